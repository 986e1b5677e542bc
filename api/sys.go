package api

import (
	"context"
	"encoding/base64"
	"fmt"
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
	// RecoverySeal says the server unseals itself and the keys counted by
	// Threshold and Shares are recovery keys.
	RecoverySeal bool   `json:"recovery_seal"`
	ClusterName  string `json:"cluster_name,omitempty"`
	ClusterID    string `json:"cluster_id,omitempty"`
	StorageType  string `json:"storage_type,omitempty"`
}

// SealStatus reads the seal state.
func (c *Client) SealStatus(ctx context.Context) (*SealStatus, error) {
	var st SealStatus
	return &st, c.SysJSON(ctx, http.MethodGet, "sys/seal-status", nil, &st)
}

// InitResponse carries the key shares and root token.
type InitResponse struct {
	Keys               []string `json:"keys"`
	KeysBase64         []string `json:"keys_base64"`
	RecoveryKeys       []string `json:"recovery_keys"`
	RecoveryKeysBase64 []string `json:"recovery_keys_base64"`
	RootToken          string   `json:"root_token"`
}

// InitRequest is sys/init's body: secret shares for a Shamir seal, recovery
// shares for a seal that unseals the server itself.
type InitRequest struct {
	SecretShares      int `json:"secret_shares,omitempty"`
	SecretThreshold   int `json:"secret_threshold,omitempty"`
	RecoveryShares    int `json:"recovery_shares,omitempty"`
	RecoveryThreshold int `json:"recovery_threshold,omitempty"`
}

// InitWith initialises a server as req says.
func (c *Client) InitWith(ctx context.Context, req InitRequest) (*InitResponse, error) {
	var r InitResponse
	err := c.SysJSON(ctx, http.MethodPut, "sys/init", req, &r)
	return &r, err
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

// UnsealMigrate submits one key share for a seal migration (migrate=true).
func (c *Client) UnsealMigrate(ctx context.Context, key string) (*SealStatus, error) {
	var st SealStatus
	return &st, c.SysJSON(ctx, http.MethodPut, "sys/unseal", map[string]any{"key": key, "migrate": true}, &st)
}

// GenerateRootStatus is the answer of sys/generate-root/attempt and update.
type GenerateRootStatus struct {
	Nonce            string `json:"nonce"`
	Started          bool   `json:"started"`
	Progress         int    `json:"progress"`
	Required         int    `json:"required"`
	Complete         bool   `json:"complete"`
	EncodedToken     string `json:"encoded_token"`
	EncodedRootToken string `json:"encoded_root_token"`
	PGPFingerprint   string `json:"pgp_fingerprint"`
	OTP              string `json:"otp"`
	OTPLength        int    `json:"otp_length"`
}

// GenerateRootStatus reads the root token generation under way.
func (c *Client) GenerateRootStatus(ctx context.Context) (*GenerateRootStatus, error) {
	var st GenerateRootStatus
	return &st, c.SysJSON(ctx, http.MethodGet, "sys/generate-root/attempt", nil, &st)
}

// GenerateRootInit starts a root token generation; with otp "", the
// server makes the one-time pad and answers it in OTP.
func (c *Client) GenerateRootInit(ctx context.Context, otp string) (*GenerateRootStatus, error) {
	var st GenerateRootStatus
	return &st, c.SysJSON(ctx, http.MethodPut, "sys/generate-root/attempt", map[string]any{"otp": otp}, &st)
}

// GenerateRootUpdate gives one unseal (or recovery) key share.
func (c *Client) GenerateRootUpdate(ctx context.Context, key, nonce string) (*GenerateRootStatus, error) {
	var st GenerateRootStatus
	return &st, c.SysJSON(ctx, http.MethodPut, "sys/generate-root/update", map[string]any{"key": key, "nonce": nonce}, &st)
}

// GenerateRootCancel ends the root token generation under way.
func (c *Client) GenerateRootCancel(ctx context.Context) error {
	return c.SysJSON(ctx, http.MethodDelete, "sys/generate-root/attempt", nil, nil)
}

// DecodeRootToken recovers a generated root token from its encoded form
// (unpadded base64 of the token XOR the one-time pad) and the pad.
func DecodeRootToken(encoded, otp string) (string, error) {
	raw, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(encoded), "="))
	if err != nil {
		return "", fmt.Errorf("the encoded token is not base64: %w", err)
	}
	if len(raw) != len(otp) {
		return "", fmt.Errorf("the encoded token has %d bytes but the OTP %d characters: is it the OTP of this generation?", len(raw), len(otp))
	}
	for i := range raw {
		raw[i] ^= otp[i]
	}
	return string(raw), nil
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

// LeaderStatus is the answer of sys/leader.
type LeaderStatus struct {
	HAEnabled            bool   `json:"ha_enabled"`
	IsSelf               bool   `json:"is_self"`
	ActiveTime           string `json:"active_time"`
	LeaderAddress        string `json:"leader_address"`
	LeaderClusterAddress string `json:"leader_cluster_address"`
}

// Leader reports whether the server runs with HA and which server is active.
func (c *Client) Leader(ctx context.Context) (*LeaderStatus, error) {
	var st LeaderStatus
	return &st, c.SysJSON(ctx, http.MethodGet, "sys/leader", nil, &st)
}

// StepDown makes the active server give up its HA lock and become a standby.
func (c *Client) StepDown(ctx context.Context) error {
	return c.SysJSON(ctx, http.MethodPut, "sys/step-down", nil, nil)
}
