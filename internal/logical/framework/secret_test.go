package framework_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/arcasec/arca/internal/logical"
	fw "github.com/arcasec/arca/internal/logical/framework"
	"github.com/arcasec/arca/internal/logical/leasetest"
	"github.com/arcasec/arca/internal/storage"
)

// sysView is a SystemView on a manual clock.
type sysView struct{ clock *leasetest.Clock }

func (s sysView) DefaultLeaseTTL() time.Duration { return time.Hour }
func (s sysView) MaxLeaseTTL() time.Duration     { return 24 * time.Hour }
func (s sysView) Now() time.Time                 { return s.clock.Now() }
func (s sysView) LoginGuard() logical.LoginGuard { return logical.NoLoginGuard{} }

func (s sysView) GeneratePasswordFromPolicy(context.Context, string) (string, error) {
	return "", errors.New("no password policies here")
}

// A write-ahead log entry is rolled back once it is old enough, and kept
// while its rollback fails; the periodic function runs on every round.
func TestRollbackOperationRollsBackOldWALEntries(t *testing.T) {
	ctx := context.Background()
	clock := leasetest.NewClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	var rolled []string
	fail := false
	periodic := 0
	b := &fw.Backend{
		PeriodicFunc: func(context.Context, *logical.Request) error { periodic++; return nil },
		WALRollback: func(_ context.Context, _ *logical.Request, kind string, data any) error {
			if fail {
				return errors.New("still down")
			}
			rolled = append(rolled, kind+":"+data.(map[string]any)["user"].(string))
			return nil
		},
		WALRollbackMinAge: 10 * time.Minute,
	}
	b.Setup(&logical.BackendConfig{System: sysView{clock}})
	s := storage.NewInmem()
	old, err := b.PutWAL(ctx, s, "create-user", map[string]any{"user": "old"})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(5 * time.Minute)
	young, err := b.PutWAL(ctx, s, "create-user", map[string]any{"user": "young"})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(6 * time.Minute)
	rollback := func() error {
		_, err := b.HandleRequest(ctx, &logical.Request{Operation: logical.RollbackOperation, Storage: s})
		return err
	}

	fail = true
	if err := rollback(); err == nil {
		t.Fatal("a failed rollback reported no error")
	}
	if ids, _ := b.ListWAL(ctx, s); len(ids) != 2 {
		t.Fatalf("entries after a failed rollback: %v, want both kept", ids)
	}
	fail = false
	if err := rollback(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rolled, []string{"create-user:old"}) {
		t.Fatalf("rolled back %v, want only the entry older than the minimum age", rolled)
	}
	ids, _ := b.ListWAL(ctx, s)
	if !slices.Equal(ids, []string{young}) {
		t.Fatalf("entries left %v, want [%s] (not %s)", ids, young, old)
	}
	if w, err := b.GetWAL(ctx, s, young); err != nil || w.Kind != "create-user" || !w.CreatedAt.Equal(clock.Now().Add(-6*time.Minute)) {
		t.Fatalf("GetWAL = %+v, %v", w, err)
	}
	if periodic != 2 {
		t.Fatalf("periodic function ran %d times, want 2", periodic)
	}
}

// Renewals and revocations go to the secret type the lease records; a
// type without Renew is not renewable, one without Revoke needs nothing
// undone.
func TestSecretTypesRouteRenewAndRevoke(t *testing.T) {
	ctx := context.Background()
	var calls []string
	handler := func(name string) fw.OperationFunc {
		return func(_ context.Context, req *logical.Request, _ *fw.FieldData) (*logical.Response, error) {
			calls = append(calls, name+":"+req.Secret.InternalData["user"].(string))
			return nil, nil
		}
	}
	b := &fw.Backend{Secrets: []*fw.Secret{
		{Type: "creds", DefaultDuration: time.Hour, Renew: handler("renew creds"), Revoke: handler("revoke creds")},
		{Type: "fixed"},
	}}
	resp := b.Secret("creds").Response(map[string]any{"user": "u1"}, map[string]any{"user": "u1"})
	if resp.Secret.TTL != time.Hour || !resp.Secret.Renewable || resp.Secret.InternalData[fw.SecretTypeKey] != "creds" {
		t.Fatalf("creds response secret = %+v", resp.Secret)
	}
	if _, leaked := resp.Data[fw.SecretTypeKey]; leaked {
		t.Fatal("the secret type reached the client's data")
	}
	fixed := b.Secret("fixed").Response(nil, map[string]any{"user": "u2"})
	if fixed.Secret.Renewable {
		t.Fatal("a secret type without Renew is renewable")
	}
	do := func(op logical.Operation, s *logical.Secret) error {
		_, err := b.HandleRequest(ctx, &logical.Request{Operation: op, Secret: s})
		return err
	}
	if err := do(logical.RenewOperation, resp.Secret); err != nil {
		t.Fatal(err)
	}
	if err := do(logical.RevokeOperation, resp.Secret); err != nil {
		t.Fatal(err)
	}
	if err := do(logical.RevokeOperation, fixed.Secret); err != nil {
		t.Fatalf("revoking a type without Revoke: %v", err)
	}
	if err := do(logical.RenewOperation, fixed.Secret); logical.StatusOf(err) != 400 {
		t.Fatalf("renewing a type without Renew: err = %v, want 400", err)
	}
	unknown := &logical.Secret{InternalData: map[string]any{fw.SecretTypeKey: "gone"}}
	if err := do(logical.RevokeOperation, unknown); logical.StatusOf(err) != 400 {
		t.Fatalf("revoking an unknown type: err = %v, want 400", err)
	}
	if !slices.Equal(calls, []string{"renew creds:u1", "revoke creds:u1"}) {
		t.Fatalf("calls = %v", calls)
	}
}
