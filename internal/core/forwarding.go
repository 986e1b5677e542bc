package core

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/arcasec/arca/internal/logical"
	"github.com/arcasec/arca/internal/storage"
)

// Forwarded client addresses: a standby that forwards a request to the
// active server tells it the client's address in a header, with an
// HMAC-SHA256 over the address, the method, the request URI and a
// timestamp under a key only the cluster's servers hold. The key is random,
// made by the first server to become active and kept behind the barrier at
// forwardingKeyPath, so every unsealed server (a standby too) can read it
// and nobody outside the barrier can. The active server believes the
// address only when the MAC verifies and the timestamp is recent.

const (
	forwardingKeyPath = "core/cluster/forwarding-key"
	forwardingKeyLen  = 32
	// ForwardedClientMaxAge is how far a forwarded client address's
	// timestamp may be from the receiving server's clock, either way.
	ForwardedClientMaxAge  = 60 * time.Second
	forwardedClientVersion = "v1"
)

// errNoForwardingKey is returned by a standby that finds no key: no server
// has been active yet.
var errNoForwardingKey = logical.Errorf(http.StatusServiceUnavailable, "this server is a standby and the cluster has no forwarding key yet; retry")

// ensureForwardingKey loads the cluster's forwarding key, making it when
// none is stored; it runs on a server that becomes active.
func (c *Core) ensureForwardingKey(ctx context.Context) error {
	e, err := c.barrier.Get(ctx, forwardingKeyPath)
	if err != nil {
		return fmt.Errorf("reading the forwarding key: %w", err)
	}
	if e != nil && len(e.Value) == forwardingKeyLen {
		c.setForwardingKey(e.Value)
		return nil
	}
	key := make([]byte, forwardingKeyLen)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	if err := c.barrier.Put(ctx, &storage.Entry{Key: forwardingKeyPath, Value: key}); err != nil {
		return fmt.Errorf("storing the forwarding key: %w", err)
	}
	c.setForwardingKey(key)
	return nil
}

func (c *Core) setForwardingKey(key []byte) {
	k := append([]byte(nil), key...)
	if old := c.forwardingKey.Swap(&k); old != nil {
		clear(*old)
	}
}

// dropForwardingKey forgets the key; the core is sealing.
func (c *Core) dropForwardingKey() {
	if old := c.forwardingKey.Swap(nil); old != nil {
		clear(*old)
	}
}

// loadForwardingKey returns the key, reading it from behind the barrier
// the first time (a standby). A standby whose keyring is older than the
// key's encryption reloads the keyring once.
func (c *Core) loadForwardingKey(ctx context.Context) ([]byte, error) {
	if k := c.forwardingKey.Load(); k != nil {
		return *k, nil
	}
	if c.Sealed() {
		return nil, logical.ErrSealed
	}
	e, err := c.barrier.Get(ctx, forwardingKeyPath)
	if err != nil {
		if rerr := c.barrier.Reload(ctx); rerr != nil {
			return nil, err
		}
		if e, err = c.barrier.Get(ctx, forwardingKeyPath); err != nil {
			return nil, err
		}
	}
	if e == nil || len(e.Value) != forwardingKeyLen {
		return nil, errNoForwardingKey
	}
	c.setForwardingKey(e.Value)
	return e.Value, nil
}

func forwardedClientMAC(key []byte, addr, method, uri string, ts int64) []byte {
	m := hmac.New(sha256.New, key)
	// None of the parts can hold a newline (an address, an HTTP method, a
	// request URI, a number), so the joined string is unambiguous.
	fmt.Fprintf(m, "arca forwarded client %s\n%s\n%s\n%s\n%d", forwardedClientVersion, addr, method, uri, ts)
	return m.Sum(nil)
}

// SignForwardedClient returns the header value a standby attaches to a
// request it forwards: the client's address addr, authenticated for this
// method and request URI at now.
func (c *Core) SignForwardedClient(ctx context.Context, addr, method, uri string, now time.Time) (string, error) {
	if strings.ContainsAny(addr, " \r\n") {
		return "", errors.New("invalid client address")
	}
	key, err := c.loadForwardingKey(ctx)
	if err != nil {
		return "", err
	}
	ts := now.Unix()
	mac := forwardedClientMAC(key, addr, method, uri, ts)
	return forwardedClientVersion + " " + strconv.FormatInt(ts, 10) + " " + addr + " " +
		base64.RawURLEncoding.EncodeToString(mac), nil
}

// VerifyForwardedClient returns the client address a forwarded request's
// header value names, and whether it can be believed: the MAC verifies
// under the cluster's key for this method and request URI, and the
// timestamp is within ForwardedClientMaxAge of now.
func (c *Core) VerifyForwardedClient(ctx context.Context, value, method, uri string, now time.Time) (string, bool) {
	parts := strings.Split(value, " ")
	if len(parts) != 4 || parts[0] != forwardedClientVersion || parts[2] == "" {
		return "", false
	}
	ts, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return "", false
	}
	if d := now.Sub(time.Unix(ts, 0)); d > ForwardedClientMaxAge || d < -ForwardedClientMaxAge {
		return "", false
	}
	got, err := base64.RawURLEncoding.DecodeString(parts[3])
	if err != nil {
		return "", false
	}
	key, err := c.loadForwardingKey(ctx)
	if err != nil {
		return "", false
	}
	if !hmac.Equal(got, forwardedClientMAC(key, parts[2], method, uri, ts)) {
		return "", false
	}
	return parts[2], true
}
