package logical

import "time"

// HTTPResponse is a Response as Vault clients read it: the JSON body of a
// /v1/ answer. The HTTP layer writes it, and response wrapping stores it,
// so an unwrapped response reads exactly as the original would have.
type HTTPResponse struct {
	RequestID     string         `json:"request_id"`
	LeaseID       string         `json:"lease_id"`
	Renewable     bool           `json:"renewable"`
	LeaseDuration int64          `json:"lease_duration"`
	Data          map[string]any `json:"data"`
	WrapInfo      *HTTPWrapInfo  `json:"wrap_info"`
	Warnings      []string       `json:"warnings"`
	Auth          *HTTPAuth      `json:"auth"`
	MountType     string         `json:"mount_type"`
}

// HTTPAuth is the auth block of an HTTPResponse.
type HTTPAuth struct {
	ClientToken   string   `json:"client_token"`
	Accessor      string   `json:"accessor"`
	Policies      []string `json:"policies"`
	TokenPolicies []string `json:"token_policies"`
	// IdentityPolicies are the policies the token gains from its entity.
	IdentityPolicies []string          `json:"identity_policies,omitempty"`
	Metadata         map[string]string `json:"metadata"`
	LeaseDuration    int64             `json:"lease_duration"`
	Renewable        bool              `json:"renewable"`
	EntityID         string            `json:"entity_id"`
	TokenType        string            `json:"token_type"`
	Orphan           bool              `json:"orphan"`
	MFARequirement   any               `json:"mfa_requirement"`
	NumUses          int               `json:"num_uses"`
}

// HTTPWrapInfo is the wrap_info block of an HTTPResponse.
type HTTPWrapInfo struct {
	Token           string `json:"token"`
	Accessor        string `json:"accessor"`
	TTL             int64  `json:"ttl"`
	CreationTime    string `json:"creation_time"`
	CreationPath    string `json:"creation_path"`
	WrappedAccessor string `json:"wrapped_accessor,omitempty"`
}

// NewHTTPResponse renders resp as the body of the answer to the request
// with the given ID, served by a mount of mountType.
func NewHTTPResponse(resp *Response, requestID, mountType string) *HTTPResponse {
	out := &HTTPResponse{RequestID: requestID, Data: resp.Data, Warnings: resp.Warnings, MountType: mountType}
	if s := resp.Secret; s != nil {
		out.LeaseID = s.LeaseID
		out.Renewable = s.Renewable
		out.LeaseDuration = int64(s.TTL / time.Second)
	}
	if a := resp.Auth; a != nil {
		out.Auth = &HTTPAuth{
			ClientToken:      a.ClientToken,
			Accessor:         a.Accessor,
			Policies:         a.Policies,
			TokenPolicies:    a.TokenPolicies,
			IdentityPolicies: a.IdentityPolicies,
			Metadata:         a.Metadata,
			LeaseDuration:    int64(a.TTL / time.Second),
			Renewable:        a.Renewable,
			EntityID:         a.EntityID,
			TokenType:        a.TokenType,
			Orphan:           a.Orphan,
			NumUses:          a.NumUses,
		}
	}
	if w := resp.WrapInfo; w != nil {
		out.WrapInfo = &HTTPWrapInfo{
			Token:           w.Token,
			Accessor:        w.Accessor,
			TTL:             int64(w.TTL / time.Second),
			CreationTime:    w.CreationTime.Format(time.RFC3339Nano),
			CreationPath:    w.CreationPath,
			WrappedAccessor: w.WrappedAccessor,
		}
	}
	return out
}
