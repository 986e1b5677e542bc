package seal

import (
	"bytes"
	"testing"

	"github.com/arcasec/arca/internal/seal/shamir"
)

func TestUnsealerGathersShares(t *testing.T) {
	root := bytes.Repeat([]byte{7}, 32)
	shares, err := shamir.Split(root, 5, 3)
	if err != nil {
		t.Fatal(err)
	}
	u := NewUnsealer(Config{Shares: 5, Threshold: 3})
	for i, s := range shares[:2] {
		key, err := u.Add(s)
		if err != nil || key != nil {
			t.Fatalf("share %d: key=%x err=%v", i, key, err)
		}
	}
	if u.Progress() != 2 || u.Nonce() == "" {
		t.Fatalf("progress %d nonce %q", u.Progress(), u.Nonce())
	}
	if _, err := u.Add(shares[1]); err == nil {
		t.Fatal("a repeated share was accepted")
	}
	key, err := u.Add(shares[4])
	if err != nil || !bytes.Equal(key, root) {
		t.Fatalf("key = %x, %v", key, err)
	}
	if u.Progress() != 0 || u.Nonce() != "" {
		t.Fatal("progress not reset after unseal")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, bad := range []Config{{Shares: 0, Threshold: 0}, {Shares: 3, Threshold: 4}, {Shares: 5, Threshold: 1}, {Shares: 1, Threshold: 2}, {Shares: 256, Threshold: 3}} {
		if bad.Validate() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	for _, good := range []Config{{Shares: 1, Threshold: 1}, {Shares: 5, Threshold: 3}, {Shares: 2, Threshold: 2}} {
		if err := good.Validate(); err != nil {
			t.Errorf("%+v: %v", good, err)
		}
	}
}
