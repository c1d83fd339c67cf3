package collector

import (
	"bytes"
	"os"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// The kernel's own description of BPF links (BPF_LINK_GET_FD_BY_ID,
// BPF_OBJ_GET_INFO_BY_FD): the tracepoint each attaches to. Debian's
// bpftool 7.1 prints no tracepoint name for perf-event links.
const (
	sysBPF            = 321 // x86-64, the only architecture the probes support
	bpfObjGetInfoByFD = 15
	bpfLinkGetFDByID  = 30

	bpfLinkTypeRawTracepoint = 1
	bpfLinkTypePerfEvent     = 7
	bpfPerfEventTracepoint   = 5
)

func bpfCall(cmd uintptr, attr *[32]uint32) (uintptr, syscall.Errno) {
	r, _, errno := syscall.Syscall(sysBPF, cmd, uintptr(unsafe.Pointer(attr)), unsafe.Sizeof(*attr))
	return r, errno
}

// linkInfo fills struct bpf_link_info (into info) for the link fd, with the
// name buffer's pointer and length at the given 8-byte words of it.
func linkInfo(fd int, info *[16]uint64, nameAt int, name []byte) bool {
	*info = [16]uint64{}
	if nameAt > 0 {
		info[nameAt] = uint64(uintptr(unsafe.Pointer(&name[0])))
		info[nameAt+1] = uint64(len(name))
	}
	var attr [32]uint32
	attr[0] = uint32(fd)
	attr[1] = uint32(unsafe.Sizeof(*info))
	p := uint64(uintptr(unsafe.Pointer(info)))
	attr[2], attr[3] = uint32(p), uint32(p>>32)
	_, errno := bpfCall(bpfObjGetInfoByFD, &attr)
	return errno == 0
}

// linkTracepoints names the tracepoint of every link in ids that has one
// (perf-event tracepoints such as "sys_exit_read" or "sched_process_exit",
// raw and BTF tracepoints such as "sock_send_length").
func linkTracepoints(t *testing.T, ids map[int]bool) []string {
	t.Helper()
	var names []string
	for id := range ids {
		var attr [32]uint32
		attr[0] = uint32(id)
		fd, errno := bpfCall(bpfLinkGetFDByID, &attr)
		if errno != 0 {
			continue // gone meanwhile
		}
		var info [16]uint64
		name := make([]byte, 256)
		if linkInfo(int(fd), &info, 0, nil) {
			kind := uint32(info[0])
			ok := false
			switch kind {
			case bpfLinkTypePerfEvent:
				// union at byte 16: perf_event { u32 type; u32; tracepoint { u64 tp_name; u32 name_len } }
				ok = linkInfo(int(fd), &info, 3, name) && uint32(info[2]) == bpfPerfEventTracepoint
			case bpfLinkTypeRawTracepoint:
				ok = linkInfo(int(fd), &info, 2, name)
			}
			if n := bytes.IndexByte(name, 0); ok && n > 0 {
				names = append(names, string(name[:n]))
			}
		}
		syscall.Close(int(fd))
	}
	return names
}

// kernelHasSocketLayerTracepoints: Linux 6.3+ (sock_send_length), where the
// receiver's default data path attaches no syscall tracepoint.
func kernelHasSocketLayerTracepoints() bool {
	btf, _ := os.ReadFile("/sys/kernel/btf/vmlinux")
	return bytes.Contains(btf, []byte("btf_trace_sock_send_length\x00"))
}

func isSyscallTracepoint(name string) bool {
	return strings.HasPrefix(name, "sys_enter") || strings.HasPrefix(name, "sys_exit")
}
