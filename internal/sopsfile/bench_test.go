package sopsfile

import (
	"crypto/rand"
	"testing"
)

func BenchmarkBinary10MB(b *testing.B) {
	k := newKey(b)
	data := make([]byte, 10<<20)
	rand.Read(data)
	enc, err := Encrypt(data, EncryptOptions{Format: Binary, KeyGroups: [][]MasterKey{k.rcp}})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encrypt", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			Encrypt(data, EncryptOptions{Format: Binary, KeyGroups: [][]MasterKey{k.rcp}})
		}
	})
	b.Run("decrypt", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := Decrypt(enc, Binary, ids(k), false); err != nil {
				b.Fatal(err)
			}
		}
	})
}
