// Package shamir implements Shamir's secret sharing over GF(2^8) in the
// share format Vault, OpenBao and sops use: each share holds one y value per
// secret byte followed by a final byte holding the share's x coordinate.
package shamir

import (
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
)

// Split divides secret into parts shares, any threshold of which recover it.
func Split(secret []byte, parts, threshold int) ([][]byte, error) {
	switch {
	case len(secret) == 0:
		return nil, errors.New("shamir: cannot split an empty secret")
	case parts < threshold:
		return nil, errors.New("shamir: parts cannot be less than threshold")
	case parts > 255:
		return nil, errors.New("shamir: parts cannot exceed 255")
	case threshold < 2:
		return nil, errors.New("shamir: threshold must be at least 2")
	case threshold > 255:
		return nil, errors.New("shamir: threshold cannot exceed 255")
	}
	// Distinct non-zero x coordinates in random order.
	xs, err := randomCoordinates(parts)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, parts)
	for i := range out {
		out[i] = make([]byte, len(secret)+1)
		out[i][len(secret)] = xs[i]
	}
	coeffs := make([]byte, threshold)
	for idx, b := range secret {
		// A random polynomial of degree threshold-1 with the secret byte
		// as its constant term.
		coeffs[0] = b
		if _, err := rand.Read(coeffs[1:]); err != nil {
			return nil, fmt.Errorf("shamir: reading randomness: %w", err)
		}
		for i := range out {
			out[i][idx] = evaluate(coeffs, xs[i])
		}
	}
	clear(coeffs)
	return out, nil
}

// randomCoordinates returns n distinct values from 1..255 in random order.
func randomCoordinates(n int) ([]byte, error) {
	perm := make([]byte, 255)
	for i := range perm {
		perm[i] = byte(i + 1)
	}
	// Fisher-Yates with crypto/rand.
	var r [2]byte
	for i := len(perm) - 1; i > 0; i-- {
		if _, err := rand.Read(r[:]); err != nil {
			return nil, fmt.Errorf("shamir: reading randomness: %w", err)
		}
		j := int(uint16(r[0])<<8|uint16(r[1])) % (i + 1)
		perm[i], perm[j] = perm[j], perm[i]
	}
	return perm[:n], nil
}

// Combine recovers the secret from at least threshold shares.
func Combine(parts [][]byte) ([]byte, error) {
	if len(parts) < 2 {
		return nil, errors.New("shamir: at least two shares are needed")
	}
	n := len(parts[0])
	if n < 2 {
		return nil, errors.New("shamir: shares must be at least two bytes long")
	}
	xs := make([]byte, len(parts))
	for i, p := range parts {
		if len(p) != n {
			return nil, errors.New("shamir: all shares must be the same length")
		}
		xs[i] = p[n-1]
		if xs[i] == 0 {
			return nil, errors.New("shamir: a share has the invalid x coordinate 0")
		}
		for j := 0; j < i; j++ {
			if subtle.ConstantTimeByteEq(xs[i], xs[j]) == 1 {
				return nil, errors.New("shamir: duplicate share")
			}
		}
	}
	secret := make([]byte, n-1)
	ys := make([]byte, len(parts))
	for idx := range secret {
		for i, p := range parts {
			ys[i] = p[idx]
		}
		secret[idx] = interpolateAtZero(xs, ys)
	}
	return secret, nil
}

// evaluate computes the polynomial at x by Horner's rule.
func evaluate(coeffs []byte, x byte) byte {
	var y byte
	for i := len(coeffs) - 1; i >= 0; i-- {
		y = add(mul(y, x), coeffs[i])
	}
	return y
}

// interpolateAtZero evaluates the Lagrange polynomial through (xs, ys) at 0.
func interpolateAtZero(xs, ys []byte) byte {
	var result byte
	for i := range xs {
		basis := byte(1)
		for j := range xs {
			if i == j {
				continue
			}
			// basis *= xj / (xj - xi); subtraction is xor in GF(2^8).
			basis = mul(basis, div(xs[j], add(xs[j], xs[i])))
		}
		result = add(result, mul(ys[i], basis))
	}
	return result
}

func add(a, b byte) byte { return a ^ b }

// mul multiplies in GF(2^8) with the AES polynomial x^8+x^4+x^3+x+1, in
// constant time: no branches or table lookups on secret values.
func mul(a, b byte) byte {
	var p byte
	for i := 0; i < 8; i++ {
		p ^= a & -(b & 1)
		hi := a >> 7
		a = a<<1 ^ (0x1b & -hi)
		b >>= 1
	}
	return p
}

// inverse computes a^254 = a^-1 (0 maps to 0) by square-and-multiply.
func inverse(a byte) byte {
	b := mul(a, a)   // a^2
	c := mul(a, b)   // a^3
	b = mul(c, c)    // a^6
	b = mul(b, b)    // a^12
	c = mul(b, c)    // a^15
	b = mul(b, b)    // a^24
	b = mul(b, b)    // a^48
	b = mul(b, c)    // a^63
	b = mul(b, b)    // a^126
	b = mul(a, b)    // a^127
	return mul(b, b) // a^254
}

func div(a, b byte) byte { return mul(a, inverse(b)) }
