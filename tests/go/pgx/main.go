// A pgx (v5) client as Go services use PostgreSQL, for the database
// suite: a statement without arguments (simple protocol), statements with
// arguments (pgx prepares each once per connection, then executes it), and
// a failing query. Usage: pgx-client DSN TABLE
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: pgx-client DSN TABLE")
		os.Exit(2)
	}
	ctx := context.Background()
	dsn, table := os.Args[1], os.Args[2]
	conn, err := pgx.Connect(ctx, dsn)
	check(err)
	_, err = conn.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+table+" (id serial PRIMARY KEY, email text)")
	check(err)
	_, err = conn.Exec(ctx, "INSERT INTO "+table+" (email) VALUES ($1)", "carol.pgx@example.net")
	check(err)
	total := 0
	for i := 0; i < 100; i++ {
		var n int
		check(conn.QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE id > $1", i).Scan(&n))
		total += n
	}
	_, err = conn.Exec(ctx, "SELECT * FROM "+table+"_missing")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42P01" {
		fmt.Fprintf(os.Stderr, "expected 42P01, got %v\n", err)
		os.Exit(1)
	}
	check(conn.Close(ctx))
	fmt.Println(total)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
