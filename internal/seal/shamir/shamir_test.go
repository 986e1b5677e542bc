package shamir

import (
	"bytes"
	"crypto/rand"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	secret := make([]byte, 32)
	rand.Read(secret)
	for _, c := range []struct{ parts, threshold int }{{2, 2}, {3, 2}, {5, 3}, {10, 10}, {255, 3}} {
		shares, err := Split(secret, c.parts, c.threshold)
		if err != nil {
			t.Fatal(err)
		}
		// Any threshold-sized subset works: try the first and the last.
		for _, subset := range [][][]byte{shares[:c.threshold], shares[len(shares)-c.threshold:]} {
			got, err := Combine(subset)
			if err != nil || !bytes.Equal(got, secret) {
				t.Fatalf("%d of %d: combine = %x, %v", c.threshold, c.parts, got, err)
			}
		}
		if c.threshold > 2 {
			got, _ := Combine(shares[:c.threshold-1])
			if bytes.Equal(got, secret) {
				t.Fatalf("%d of %d: fewer than threshold shares recovered the secret", c.threshold, c.parts)
			}
		}
	}
}

func TestFieldArithmetic(t *testing.T) {
	// 0x53 * 0xCA = 0x01 in the AES field (FIPS-197 example).
	if got := mul(0x53, 0xca); got != 0x01 {
		t.Fatalf("mul(0x53,0xca) = %#x", got)
	}
	if got := mul(0x57, 0x83); got != 0xc1 {
		t.Fatalf("mul(0x57,0x83) = %#x, want 0xc1", got)
	}
	for a := 1; a < 256; a++ {
		if mul(byte(a), inverse(byte(a))) != 1 {
			t.Fatalf("inverse(%d) is wrong", a)
		}
	}
}

func TestKnownShares(t *testing.T) {
	// Polynomial 0x42 + 0x07x for one secret byte: shares at x=1 and x=2.
	s1 := []byte{add(0x42, mul(0x07, 1)), 1}
	s2 := []byte{add(0x42, mul(0x07, 2)), 2}
	got, err := Combine([][]byte{s1, s2})
	if err != nil || !bytes.Equal(got, []byte{0x42}) {
		t.Fatalf("combine = %x, %v", got, err)
	}
}

func TestCombineRejects(t *testing.T) {
	if _, err := Combine([][]byte{{1, 2}}); err == nil {
		t.Error("one share accepted")
	}
	if _, err := Combine([][]byte{{1, 2}, {3, 2}}); err == nil {
		t.Error("duplicate x accepted")
	}
	if _, err := Combine([][]byte{{1, 2}, {3, 4, 5}}); err == nil {
		t.Error("mismatched lengths accepted")
	}
	if _, err := Split([]byte("x"), 2, 3); err == nil {
		t.Error("threshold above parts accepted")
	}
}

func FuzzCombine(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4}, 2)
	f.Fuzz(func(t *testing.T, raw []byte, n int) {
		if n < 1 || n > 8 {
			return
		}
		size := len(raw) / n
		parts := make([][]byte, n)
		for i := range parts {
			parts[i] = raw[i*size : (i+1)*size]
		}
		Combine(parts)
	})
}
