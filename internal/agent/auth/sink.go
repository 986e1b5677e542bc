package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/arcasec/arca/api"
	"github.com/arcasec/arca/internal/agent/config"
)

// NewSink builds a sink from its stanza. As Vault Agent does, it checks at
// once that a file can be created beside path (a missing directory is an
// error now, not at the first token); it never creates directories.
func NewSink(s *config.Sink) (Sink, error) {
	if s == nil {
		return nil, errors.New("auto_auth.sink: no sink stanza")
	}
	if s.Type != "file" {
		return nil, fmt.Errorf("auto_auth.sink: type %q is not supported (file)", s.Type)
	}
	if s.Path == "" {
		return nil, errors.New("auto_auth.sink.file.config.path is required")
	}
	if s.WrapTTL < 0 {
		return nil, errors.New("auto_auth.sink.file: wrap_ttl must not be negative")
	}
	mode := s.Mode
	if mode == 0 {
		mode = 0o640
	}
	if mode&^os.ModePerm != 0 {
		return nil, fmt.Errorf("auto_auth.sink.file.config.mode %v is not a plain file mode such as 0640", mode)
	}
	f := &FileSink{Path: s.Path, Mode: mode, WrapTTL: s.WrapTTL}
	tmp, err := f.createTemp()
	if err != nil {
		return nil, fmt.Errorf("auto_auth.sink.file: cannot write beside %s: %w", s.Path, err)
	}
	tmp.Close()
	os.Remove(tmp.Name())
	return f, nil
}

// FileSink writes each token to a file, replacing it atomically (a temp
// file beside it, renamed over it) with Mode.
type FileSink struct {
	Path string
	Mode os.FileMode
	// WrapTTL, when set, writes the JSON wrap info of a wrapping token that
	// holds the token (sys/wrapping/wrap) instead of the token itself, as
	// Vault Agent does.
	WrapTTL time.Duration
}

// wrapInfo is what a wrapping sink writes: Vault Agent's shape.
type wrapInfo struct {
	Token           string `json:"token"`
	Accessor        string `json:"accessor"`
	TTL             int64  `json:"ttl"`
	CreationTime    string `json:"creation_time"`
	CreationPath    string `json:"creation_path"`
	WrappedAccessor string `json:"wrapped_accessor"`
}

// Write stores token, wrapped first when WrapTTL is set (c makes the wrap
// request, carrying token).
func (f *FileSink) Write(ctx context.Context, c *api.Client, token string) error {
	out := token
	if f.WrapTTL > 0 {
		var err error
		if out, err = WrapToken(ctx, c, token, f.WrapTTL); err != nil {
			return err
		}
	}
	return f.WriteRaw(out)
}

// WrapToken wraps token in a single-use wrapping token valid for ttl and
// returns the wrap info as JSON, the text a wrapping sink writes.
func WrapToken(ctx context.Context, c *api.Client, token string, ttl time.Duration) (string, error) {
	wc := c.Clone()
	wc.SetToken(token)
	secs := int64(ttl.Round(time.Second) / time.Second)
	if secs < 1 {
		secs = 1
	}
	wc.SetWrapTTL(strconv.FormatInt(secs, 10))
	s, err := wc.Write(ctx, "sys/wrapping/wrap", map[string]any{"token": token})
	if err != nil {
		return "", fmt.Errorf("wrapping the token for the sink: %w", err)
	}
	if s == nil || s.WrapInfo == nil || s.WrapInfo.Token == "" {
		return "", errors.New("wrapping the token for the sink: the response carries no wrap info")
	}
	return encodeWrapInfo(s.WrapInfo)
}

func encodeWrapInfo(w *api.SecretWrapInfo) (string, error) {
	b, err := json.Marshal(wrapInfo{Token: w.Token, Accessor: w.Accessor, TTL: w.TTL, CreationTime: w.CreationTime,
		CreationPath: w.CreationPath, WrappedAccessor: w.WrappedAccessor})
	if err != nil {
		return "", err
	}
	return string(b) + "\n", nil
}

// WriteRaw writes text to the file as is, atomically.
func (f *FileSink) WriteRaw(text string) error {
	tmp, err := f.createTemp()
	if err != nil {
		return fmt.Errorf("writing the sink %s: %w", f.Path, err)
	}
	name := tmp.Name()
	fail := func(err error) error {
		tmp.Close()
		os.Remove(name)
		return fmt.Errorf("writing the sink %s: %w", f.Path, err)
	}
	if err := tmp.Chmod(f.Mode); err != nil { // exact mode, whatever the umask
		return fail(err)
	}
	if _, err := tmp.WriteString(text); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(name)
		return fmt.Errorf("writing the sink %s: %w", f.Path, err)
	}
	if err := os.Rename(name, f.Path); err != nil {
		os.Remove(name)
		return fmt.Errorf("writing the sink %s: %w", f.Path, err)
	}
	return nil
}

func (f *FileSink) createTemp() (*os.File, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	name := filepath.Join(filepath.Dir(f.Path), "."+filepath.Base(f.Path)+".tmp."+hex.EncodeToString(b[:]))
	return os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, f.Mode)
}
