package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestClusterAcceptsSuperuserAndSurvivesRestart(t *testing.T) {
	c := Start(t)
	ctx := context.Background()
	query := func() (string, error) {
		conn, err := pgx.Connect(ctx, c.URL())
		if err != nil {
			return "", err
		}
		defer conn.Close(ctx)
		var who string
		err = conn.QueryRow(ctx, "SELECT current_user").Scan(&who)
		return who, err
	}
	if who, err := query(); err != nil || who != Superuser {
		t.Fatalf("connect as superuser: %q, %v", who, err)
	}
	if _, err := pgx.Connect(ctx, c.URLFor(Superuser, "wrong")); err == nil {
		t.Fatal("a wrong password was accepted")
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := query(); err == nil {
		t.Fatal("connected to a stopped cluster")
	}
	if err := c.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := query(); err != nil {
		t.Fatalf("after restart: %v", err)
	}
}
