package api

import (
	"context"
	"net/http"
	"strings"
)

// SealStatus is the answer of sys/seal-status and sys/unseal.
type SealStatus struct {
	Type        string `json:"type"`
	Initialized bool   `json:"initialized"`
	Sealed      bool   `json:"sealed"`
	Threshold   int    `json:"t"`
	Shares      int    `json:"n"`
	Progress    int    `json:"progress"`
	Nonce       string `json:"nonce"`
	Version     string `json:"version"`
	BuildDate   string `json:"build_date"`
	Migration   bool   `json:"migration"`
	ClusterName string `json:"cluster_name,omitempty"`
	ClusterID   string `json:"cluster_id,omitempty"`
	StorageType string `json:"storage_type,omitempty"`
}

// SealStatus reads the seal state.
func (c *Client) SealStatus(ctx context.Context) (*SealStatus, error) {
	var st SealStatus
	return &st, c.SysJSON(ctx, http.MethodGet, "sys/seal-status", nil, &st)
}

// InitResponse carries the key shares and root token.
type InitResponse struct {
	Keys       []string `json:"keys"`
	KeysBase64 []string `json:"keys_base64"`
	RootToken  string   `json:"root_token"`
}

// Init initialises a server.
func (c *Client) Init(ctx context.Context, shares, threshold int) (*InitResponse, error) {
	var r InitResponse
	err := c.SysJSON(ctx, http.MethodPut, "sys/init", map[string]any{"secret_shares": shares, "secret_threshold": threshold}, &r)
	return &r, err
}

// Unseal submits one key share; reset discards progress instead.
func (c *Client) Unseal(ctx context.Context, key string, reset bool) (*SealStatus, error) {
	body := map[string]any{"key": key}
	if reset {
		body = map[string]any{"reset": true}
	}
	var st SealStatus
	return &st, c.SysJSON(ctx, http.MethodPut, "sys/unseal", body, &st)
}

// Seal seals the server.
func (c *Client) Seal(ctx context.Context) error {
	return c.SysJSON(ctx, http.MethodPut, "sys/seal", nil, nil)
}

// MountInfo describes a mount as sys/mounts and the preflight return it.
type MountInfo struct {
	Path    string
	Type    string
	Version int // KV version, 0 when not KV
}

// Preflight asks which mount holds path and, for KV, which version it is,
// as the vault CLI does before every kv command.
func (c *Client) Preflight(ctx context.Context, path string) (*MountInfo, error) {
	s, err := c.Read(ctx, "sys/internal/ui/mounts/"+strings.TrimPrefix(path, "/"), nil)
	if err != nil {
		return nil, err
	}
	if s == nil || s.Data == nil {
		return nil, &ResponseError{Method: "GET", Path: path, StatusCode: http.StatusNotFound, Errors: []string{"no mount at " + path}}
	}
	mi := &MountInfo{}
	mi.Path, _ = s.Data["path"].(string)
	mi.Type, _ = s.Data["type"].(string)
	if opts, ok := s.Data["options"].(map[string]any); ok && mi.Type == "kv" {
		mi.Version = 1
		if opts["version"] == "2" {
			mi.Version = 2
		}
	} else if mi.Type == "kv" {
		mi.Version = 1
	}
	return mi, nil
}
