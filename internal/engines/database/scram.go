package database

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
)

// password_authentication values, as Vault's PostgreSQL plugin names them.
const (
	passwordAuthPassword = "password"      // the plaintext goes to PostgreSQL, which hashes it
	passwordAuthSCRAM    = "scram-sha-256" // Arca sends a SCRAM-SHA-256 verifier instead
)

// SCRAM-SHA-256 verifier parameters (RFC 5802, RFC 7677), the ones
// PostgreSQL itself uses.
const (
	scramSaltLen    = 16
	scramIterations = 4096
)

// scramVerifier computes the SCRAM-SHA-256 verifier PostgreSQL stores for
// password, in PostgreSQL's format:
//
//	SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
//
// With it in a statement the plaintext never reaches the database, its
// statement log or pg_stat_statements. PostgreSQL normalises passwords with
// SASLprep before hashing; that leaves printable ASCII unchanged, so other
// passwords are refused rather than given a verifier that would not match.
func scramVerifier(password string) (string, error) {
	for i := 0; i < len(password); i++ {
		if c := password[i]; c < 0x21 || c > 0x7e {
			return "", errors.New("with password_authentication=scram-sha-256 a password must be printable ASCII without spaces")
		}
	}
	salt := make([]byte, scramSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("generating a SCRAM salt: %w", err)
	}
	return scramVerifierWithSalt(password, salt, scramIterations)
}

func scramVerifierWithSalt(password string, salt []byte, iterations int) (string, error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("deriving the SCRAM key: %w", err)
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := hmacSHA256(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(storedKey[:]), b64(serverKey)), nil
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}
