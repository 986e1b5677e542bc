package sopsfile

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"filippo.io/age"
)

type testKey struct {
	id  *age.X25519Identity
	rcp []MasterKey
}

func newKey(t testing.TB) testKey {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	rcp, err := ParseAgeRecipients(id.Recipient().String())
	if err != nil {
		t.Fatal(err)
	}
	return testKey{id: id, rcp: rcp}
}

func ids(keys ...testKey) AgeIdentities {
	var out AgeIdentities
	for _, k := range keys {
		out = append(out, k.id)
	}
	return out
}

var samples = map[Format]string{
	YAML: `# top comment
name: app
port: 5432
ratio: 1.5
enabled: true
empty: ""
nothing: null
when: 2024-01-01T00:00:00Z
nested:
    user: admin
    password: s3cr3t
    deeper:
        - a
        - 2
        - false
multi: |
    line one
    line two
public_unencrypted: visible
`,
	JSON: `{
	"name": "app",
	"port": 5432,
	"big": 12345678901234,
	"ratio": 1.5,
	"enabled": true,
	"empty": "",
	"nothing": null,
	"nested": {
		"list": [
			1,
			"two",
			{
				"three": 3
			}
		]
	},
	"public_unencrypted": "visible"
}
`,
	INI:    "# top\n[db]\nuser     = app\n# the password\npassword = s3cr3t\n\n[api]\ntoken              = abc123\npublic_unencrypted = visible\n",
	Dotenv: "# comment\nNAME=app\nMULTI=line one\\nline two\nEMPTY=\nPUBLIC_unencrypted=visible\n",
	Binary: "\x00\x01binary\xffdata\n",
}

func TestRoundTripEveryFormat(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	for f, plain := range samples {
		t.Run(string(f), func(t *testing.T) {
			enc, err := Encrypt([]byte(plain), EncryptOptions{Format: f, KeyGroups: [][]MasterKey{append(k1.rcp, k2.rcp...)}})
			if err != nil {
				t.Fatal(err)
			}
			for _, secret := range []string{"s3cr3t", "admin", "5432", "line one"} {
				if strings.Contains(plain, secret) && bytes.Contains(enc, []byte(secret)) {
					t.Fatalf("%q is in the encrypted file in plaintext:\n%s", secret, enc)
				}
			}
			if f != Binary && !bytes.Contains(enc, []byte("visible")) {
				t.Fatalf("the _unencrypted value was encrypted:\n%s", enc)
			}
			// Either recipient decrypts.
			for _, k := range []testKey{k1, k2} {
				got, err := Decrypt(enc, f, ids(k), false)
				if err != nil {
					t.Fatalf("decrypt: %v\n%s", err, enc)
				}
				if string(got) != plain {
					t.Fatalf("round trip changed the file:\n--- got\n%s\n--- want\n%s", got, plain)
				}
			}
		})
	}
}

func TestKeyGroupsWithThreshold(t *testing.T) {
	a, b, c := newKey(t), newKey(t), newKey(t)
	enc, err := Encrypt([]byte("k: v\n"), EncryptOptions{Format: YAML, KeyGroups: [][]MasterKey{a.rcp, b.rcp, c.rcp}, ShamirThreshold: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(enc, []byte("key_groups:")) || !bytes.Contains(enc, []byte("shamir_threshold: 2")) {
		t.Fatalf("metadata:\n%s", enc)
	}
	if got, err := Decrypt(enc, YAML, ids(a, c), false); err != nil || string(got) != "k: v\n" {
		t.Fatalf("two of three groups: %q, %v", got, err)
	}
	if _, err := Decrypt(enc, YAML, ids(b), false); !errors.Is(err, ErrNoDataKey) {
		t.Fatalf("one of three groups: %v", err)
	}
}

func TestSelectionRules(t *testing.T) {
	k := newKey(t)
	plain := "password: p\nusername: u\ndb:\n    password: q\n"
	enc, err := Encrypt([]byte(plain), EncryptOptions{Format: YAML, KeyGroups: [][]MasterKey{k.rcp}, Rule: Rule{EncryptedRegex: "^password$"}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(enc, []byte("username: u")) || bytes.Contains(enc, []byte("password: p")) || bytes.Contains(enc, []byte("password: q")) {
		t.Fatalf("encrypted_regex:\n%s", enc)
	}
	if got, err := Decrypt(enc, YAML, ids(k), false); err != nil || string(got) != plain {
		t.Fatalf("decrypt: %q %v", got, err)
	}
	enc, _ = Encrypt([]byte(plain), EncryptOptions{Format: YAML, KeyGroups: [][]MasterKey{k.rcp}, Rule: Rule{EncryptedRegex: "^password$", MACOnlyEncrypted: true}})
	// With mac_only_encrypted, the clear values may change without breaking the MAC.
	edited := bytes.Replace(enc, []byte("username: u"), []byte("username: changed"), 1)
	if _, err := Decrypt(edited, YAML, ids(k), false); err != nil {
		t.Fatalf("mac_only_encrypted: clear edit rejected: %v", err)
	}
}

func TestTamperIsDetected(t *testing.T) {
	k, other := newKey(t), newKey(t)
	enc, err := Encrypt([]byte("a: one\nb: two\nc_unencrypted: three\n"), EncryptOptions{Format: YAML, KeyGroups: [][]MasterKey{k.rcp}})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(enc), "\n")
	cases := map[string]string{
		"renamed key":      strings.Replace(string(enc), "\nb: ENC", "\nx: ENC", 1),
		"reordered values": strings.Join(append([]string{lines[1], lines[0]}, lines[2:]...), "\n"),
		"clear value":      strings.Replace(string(enc), "c_unencrypted: three", "c_unencrypted: four", 1),
		"removed value":    strings.Join(lines[1:], "\n"),
	}
	for name, bad := range cases {
		if _, err := Decrypt([]byte(bad), YAML, ids(k), false); err == nil {
			t.Errorf("%s: decrypted without error", name)
		}
	}
	if _, err := Decrypt(enc, YAML, ids(other), false); !errors.Is(err, ErrNoDataKey) {
		t.Errorf("wrong key: %v", err)
	}
	ev, _ := parseEnc(strings.Fields(lines[0])[1])
	ev.data[0] ^= 1
	flipped := strings.Replace(string(enc), strings.Fields(lines[0])[1], ev.String(), 1)
	if _, err := Decrypt([]byte(flipped), YAML, ids(k), false); err == nil {
		t.Error("changed ciphertext decrypted")
	}
}

func TestRejects(t *testing.T) {
	k := newKey(t)
	if _, err := Encrypt([]byte("- a\n- b\n"), EncryptOptions{Format: YAML, KeyGroups: [][]MasterKey{k.rcp}}); err == nil {
		t.Error("a top-level YAML list was accepted")
	}
	if _, err := Encrypt([]byte("sops: x\n"), EncryptOptions{Format: YAML, KeyGroups: [][]MasterKey{k.rcp}}); err == nil {
		t.Error("a user key named sops was accepted")
	}
	if _, err := Encrypt([]byte("a: b\n"), EncryptOptions{Format: YAML}); err == nil {
		t.Error("encryption without keys succeeded")
	}
	if _, err := Decrypt([]byte("a: b\n"), YAML, ids(k), false); !errors.Is(err, ErrNotEncrypted) {
		t.Errorf("plain file: %v", err)
	}
}

func FuzzParseEnc(f *testing.F) {
	f.Add("ENC[AES256_GCM,data:AAAA,iv:AAAAAAAAAAAAAAAAAAAAAA==,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:str]")
	f.Add("ENC[AES256_GCM,data:,iv:x,tag:y,type:int]")
	f.Fuzz(func(t *testing.T, s string) {
		ev, err := parseEnc(s)
		if err != nil {
			return
		}
		if _, err := decryptValue(make([]byte, 32), ev.String(), "a:"); err == nil {
			t.Fatal("a random value decrypted under the zero key")
		}
	})
}

func FuzzLoadMetadata(f *testing.F) {
	k := newKey(f)
	enc, _ := Encrypt([]byte("a: b\n"), EncryptOptions{Format: YAML, KeyGroups: [][]MasterKey{k.rcp}})
	f.Add(enc)
	encEnv, _ := Encrypt([]byte("A=b\n"), EncryptOptions{Format: Dotenv, KeyGroups: [][]MasterKey{k.rcp}})
	f.Add(encEnv)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, format := range []Format{YAML, JSON, Dotenv} {
			if file, err := Load(data, format); err == nil {
				file.DataKey(ids(k))
			}
		}
	})
}
