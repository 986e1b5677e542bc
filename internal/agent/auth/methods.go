package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/arcasec/arca/api"
	"github.com/arcasec/arca/internal/agent/config"
)

// NewMethod builds the method an auto_auth stanza names; an unknown type or
// a missing required config field is an error naming it.
func NewMethod(m *config.Method) (Method, error) {
	if m == nil {
		return nil, errors.New("auto_auth: no method stanza")
	}
	if m.WrapTTL < 0 {
		return nil, fmt.Errorf("auto_auth.method.%s: wrap_ttl must not be negative", m.Type)
	}
	mount := strings.Trim(m.MountPath, "/")
	if mount == "" {
		mount = "auth/" + m.Type
	}
	o := opts{typ: m.Type, cfg: m.Config}
	switch m.Type {
	case "approle":
		a := &approle{mount: mount, wrapTTL: m.WrapTTL, remove: true}
		var err error
		if a.roleIDPath, err = o.requiredString("role_id_file_path"); err != nil {
			return nil, err
		}
		if a.secretIDPath, _, err = o.string("secret_id_file_path"); err != nil {
			return nil, err
		}
		if v, ok, err := o.bool("remove_secret_id_file_after_reading"); err != nil {
			return nil, err
		} else if ok {
			a.remove = v
		}
		wp, ok, err := o.string("secret_id_response_wrapping_path")
		if err != nil {
			return nil, err
		}
		if ok && strings.Trim(wp, "/") == "" {
			return nil, o.errorf("secret_id_response_wrapping_path", "is empty")
		}
		if ok && a.secretIDPath == "" {
			return nil, o.errorf("secret_id_response_wrapping_path", "needs secret_id_file_path (the file that holds the wrapping token)")
		}
		a.wrapPath = strings.Trim(wp, "/")
		return a, nil
	case "jwt":
		j := &jwtMethod{mount: mount, wrapTTL: m.WrapTTL, remove: true}
		var err error
		if j.path, err = o.requiredString("path"); err != nil {
			return nil, err
		}
		if j.role, err = o.requiredString("role"); err != nil {
			return nil, err
		}
		if v, ok, err := o.bool("remove_jwt_after_reading"); err != nil {
			return nil, err
		} else if ok {
			j.remove = v
		}
		return j, nil
	case "token_file":
		if m.WrapTTL > 0 {
			return nil, errors.New("auto_auth.method.token_file: wrap_ttl cannot be used: the token is not the result of a login")
		}
		t := &tokenFile{}
		var err error
		if t.path, err = o.requiredString("token_file_path"); err != nil {
			return nil, err
		}
		return t, nil
	case "":
		return nil, errors.New("auto_auth.method: no type (method \"approle\" {...} or type = \"approle\")")
	default:
		return nil, fmt.Errorf("auto_auth.method: type %q is not supported (approle, jwt, token_file)", m.Type)
	}
}

// opts reads a method's config {} block.
type opts struct {
	typ string
	cfg map[string]any
}

func (o opts) errorf(key, format string, args ...any) error {
	return fmt.Errorf("auto_auth.method.%s.config.%s %s", o.typ, key, fmt.Sprintf(format, args...))
}

func (o opts) string(key string) (string, bool, error) {
	v, ok := o.cfg[key]
	if !ok || v == nil {
		return "", false, nil
	}
	s, isStr := v.(string)
	if !isStr {
		return "", true, o.errorf(key, "must be a string")
	}
	return s, true, nil
}

func (o opts) requiredString(key string) (string, error) {
	s, ok, err := o.string(key)
	if err != nil {
		return "", err
	}
	if !ok || strings.TrimSpace(s) == "" {
		return "", o.errorf(key, "is required")
	}
	return s, nil
}

func (o opts) bool(key string) (bool, bool, error) {
	v, ok := o.cfg[key]
	if !ok || v == nil {
		return false, false, nil
	}
	switch b := v.(type) {
	case bool:
		return b, true, nil
	case string:
		p, err := strconv.ParseBool(strings.TrimSpace(b))
		if err != nil {
			return false, true, o.errorf(key, "must be true or false")
		}
		return p, true, nil
	case int:
		return b != 0, true, nil
	case int64:
		return b != 0, true, nil
	case float64:
		return b != 0, true, nil
	case json.Number:
		return b.String() != "0", true, nil
	}
	return false, true, o.errorf(key, "must be true or false")
}

// loginClient is c without its token (a login carries none), asking for a
// wrapped response when wrapTTL is set.
func loginClient(c *api.Client, wrapTTL time.Duration) *api.Client {
	lc := c.Clone()
	lc.SetToken("")
	if wrapTTL > 0 {
		lc.SetWrapTTL(strconv.FormatInt(int64(wrapTTL.Round(time.Second)/time.Second), 10))
	} else {
		lc.SetWrapTTL("")
	}
	return lc
}

// login posts body to <mount>/login and checks the answer carries a token
// (or, wrapped, a wrapping token).
func login(ctx context.Context, c *api.Client, mount string, wrapTTL time.Duration, body map[string]any) (*api.Secret, error) {
	s, err := loginClient(c, wrapTTL).Write(ctx, mount+"/login", body)
	if err != nil {
		return nil, fmt.Errorf("logging in at %s: %w", mount, err)
	}
	switch {
	case s == nil:
		return nil, fmt.Errorf("logging in at %s: the server returned nothing", mount)
	case wrapTTL > 0:
		if s.WrapInfo == nil || s.WrapInfo.Token == "" {
			return nil, fmt.Errorf("logging in at %s: wrap_ttl was asked but the response is not wrapped", mount)
		}
	case s.Auth == nil || s.Auth.ClientToken == "":
		return nil, fmt.Errorf("logging in at %s: the response carries no token", mount)
	}
	return s, nil
}

// readCredential reads a credential file. A missing or empty file is not an
// error when a cached value can stand in (ok false then).
func readCredential(path string) (val string, ok bool, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", false, nil
		}
		return "", false, fmt.Errorf("reading %s: %w", path, errors.Unwrap(err))
	}
	v := strings.TrimSpace(string(b))
	return v, v != "", nil
}

// approle logs in with a role ID and a secret ID read from files. A secret
// ID file removed after reading leaves the secret ID in memory for later
// logins, as Vault Agent does.
type approle struct {
	mount, roleIDPath, secretIDPath, wrapPath string
	remove                                    bool
	wrapTTL                                   time.Duration

	mu               sync.Mutex
	roleID, secretID string
}

func (a *approle) Login(ctx context.Context, c *api.Client) (*api.Secret, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	v, ok, err := readCredential(a.roleIDPath)
	switch {
	case ok:
		a.roleID = v
	case a.roleID != "":
		// the file went away or is unreadable: the cached role ID stands
	case err != nil:
		return nil, fmt.Errorf("approle: no role ID: %w", err)
	default:
		return nil, fmt.Errorf("approle: no role ID: %s is missing or empty", a.roleIDPath)
	}
	body := map[string]any{"role_id": a.roleID}
	if a.secretIDPath == "" {
		return login(ctx, c, a.mount, a.wrapTTL, body)
	}
	v, ok, err = readCredential(a.secretIDPath)
	if ok {
		if a.wrapPath != "" {
			if v, err = a.unwrapSecretID(ctx, c, v); err != nil {
				return nil, err
			}
		}
		a.secretID = v
		if a.remove {
			if err := os.Remove(a.secretIDPath); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("approle: removing the secret ID file after reading it: %w", errors.Unwrap(err))
			}
		}
	}
	if a.secretID == "" {
		if err != nil {
			return nil, fmt.Errorf("approle: no secret ID: %w", err)
		}
		return nil, fmt.Errorf("approle: no secret ID: %s is missing or empty", a.secretIDPath)
	}
	body["secret_id"] = a.secretID
	return login(ctx, c, a.mount, a.wrapTTL, body)
}

// unwrapSecretID checks that wrapping token wt was created by the expected
// path, then unwraps it and returns the secret ID inside.
func (a *approle) unwrapSecretID(ctx context.Context, c *api.Client, wt string) (string, error) {
	wc := c.Clone()
	wc.SetToken(wt)
	wc.SetWrapTTL("")
	look, err := wc.Read(ctx, "sys/wrapping/lookup", nil)
	if err != nil {
		return "", fmt.Errorf("approle: looking up the wrapped secret ID: %w", err)
	}
	if look == nil || look.Data == nil {
		return "", errors.New("approle: looking up the wrapped secret ID: the server returned nothing")
	}
	cp, _ := look.Data["creation_path"].(string)
	if strings.Trim(cp, "/") != a.wrapPath {
		return "", fmt.Errorf("approle: the wrapped secret ID was created at %q, not at secret_id_response_wrapping_path %q: refusing it", cp, a.wrapPath)
	}
	s, err := wc.Unwrap(ctx, "")
	if err != nil {
		return "", fmt.Errorf("approle: unwrapping the secret ID: %w", err)
	}
	if s == nil {
		return "", errors.New("approle: unwrapping the secret ID: the server returned nothing")
	}
	id, _ := s.Data["secret_id"].(string)
	if id == "" {
		return "", errors.New("approle: the wrapped response holds no secret_id")
	}
	return id, nil
}

// jwtMethod logs in with a JWT read from a file on each login (a projected
// Kubernetes token rotates). With remove_jwt_after_reading (Vault Agent's
// default) the file is removed and the JWT kept for later logins until a
// new file appears.
type jwtMethod struct {
	mount, path, role string
	remove            bool
	wrapTTL           time.Duration

	mu  sync.Mutex
	jwt string
}

func (j *jwtMethod) Login(ctx context.Context, c *api.Client) (*api.Secret, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	v, ok, err := readCredential(j.path)
	if ok {
		j.jwt = v
		if j.remove {
			if err := os.Remove(j.path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("jwt: removing the JWT file after reading it: %w", errors.Unwrap(err))
			}
		}
	}
	if j.jwt == "" {
		if err != nil {
			return nil, fmt.Errorf("jwt: no JWT: %w", err)
		}
		return nil, fmt.Errorf("jwt: no JWT: %s is missing or empty", j.path)
	}
	return login(ctx, c, j.mount, j.wrapTTL, map[string]any{"role": j.role, "jwt": j.jwt})
}

// tokenFile uses a token read from a file as it is; a lookup-self checks it
// and learns its TTL. The file is read again at each re-authentication.
type tokenFile struct {
	path string

	mu    sync.Mutex
	token string
}

func (t *tokenFile) Login(ctx context.Context, c *api.Client) (*api.Secret, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	v, ok, err := readCredential(t.path)
	switch {
	case ok:
		t.token = v
	case t.token != "":
	case err != nil:
		return nil, fmt.Errorf("token_file: no token: %w", err)
	default:
		return nil, fmt.Errorf("token_file: no token: %s is missing or empty", t.path)
	}
	tc := c.Clone()
	tc.SetToken(t.token)
	tc.SetWrapTTL("")
	s, err := tc.Read(ctx, "auth/token/lookup-self", nil)
	if err != nil {
		return nil, fmt.Errorf("token_file: looking up the token: %w", err)
	}
	if s == nil || s.Data == nil {
		return nil, errors.New("token_file: looking up the token: the server returned nothing")
	}
	ttl, _ := api.Int64(s.Data["ttl"])
	renewable, _ := s.Data["renewable"].(bool)
	typ, _ := s.Data["type"].(string)
	s.Auth = &api.SecretAuth{ClientToken: t.token, LeaseDuration: ttl, Renewable: renewable, TokenType: typ}
	if acc, ok := s.Data["accessor"].(string); ok {
		s.Auth.Accessor = acc
	}
	return s, nil
}
