package native

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVersion(t *testing.T) {
	assert.NotEmpty(t, Version())
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []string{`not json`, `{"bogus_key": 1}`, `{"capture_size": 0}`} {
		_, err := New([]byte(cfg))
		require.Error(t, err, cfg)
		assert.ErrorIs(t, err, ErrConfig, cfg)
		var e *Error
		require.True(t, errors.As(err, &e))
		assert.NotEmpty(t, e.Message, "the library's message of %s", cfg)
	}
}

func TestUnknownKeyNamed(t *testing.T) {
	_, err := New([]byte(`{"bogus_key": 1}`))
	require.ErrorIs(t, err, ErrConfig)
	assert.Contains(t, err.Error(), "bogus_key")
}

// The last error is per OS thread; concurrent failing calls each get theirs.
func TestLastErrorPerCall(t *testing.T) {
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := New([]byte(fmt.Sprintf(`{"bogus_%d": 1}`, i)))
			assert.ErrorIs(t, err, ErrConfig)
			assert.Contains(t, err.Error(), fmt.Sprintf("bogus_%d", i))
		}()
	}
	wg.Wait()
}

func TestStoppedLifecycleWithoutStart(t *testing.T) {
	inst, err := New([]byte(`{}`))
	require.NoError(t, err)
	_, err = inst.Poll(10 * time.Millisecond)
	assert.ErrorIs(t, err, ErrState)
	require.NoError(t, inst.Stop())
	require.NoError(t, inst.Stop())
	st, err := inst.Stats()
	require.NoError(t, err)
	assert.Equal(t, Stats{}, st, "an instance that never started counts nothing")
	require.NoError(t, inst.Free())
	_, err = inst.Stats()
	assert.ErrorIs(t, err, ErrNull, "after Free the handle is gone")
}

// Configurations over the size limit are refused unread, with the limit in the message.
func TestConfigSizeLimit(t *testing.T) {
	at := []byte("{" + strings.Repeat(" ", MaxConfigBytes-2) + "}")
	require.NoError(t, CheckConfig(at))
	over := append([]byte("{ "), at[1:]...)
	err := CheckConfig(over)
	require.ErrorIs(t, err, ErrConfig)
	assert.Contains(t, err.Error(), "at most 4194304")
}
