package fakeapi

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
)

// Credentials are the four OAuth 1.0a values NuOrder issues.
type Credentials struct {
	ConsumerKey    string
	ConsumerSecret string
	Token          string
	TokenSecret    string
}

// ParseAuthorization reads an OAuth Authorization header leniently, as
// NuOrder does (shared/nuorder-api.md §2.2): the scheme in any case, values
// quoted or not, pairs separated by "," or ", ", values percent-encoded or
// not. It returns the parameters with their values decoded.
func ParseAuthorization(h string) (map[string]string, error) {
	h = strings.TrimSpace(h)
	sp := strings.IndexAny(h, " \t")
	if sp < 0 || !strings.EqualFold(h[:sp], "oauth") {
		return nil, errors.New("Authorization header is not OAuth")
	}
	params := map[string]string{}
	for _, part := range strings.Split(h[sp+1:], ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, errors.New("malformed OAuth parameter " + k)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		if dec, err := url.PathUnescape(v); err == nil {
			v = dec
		}
		params[strings.TrimSpace(k)] = v
	}
	return params, nil
}

// SignatureNuOrder computes NuOrder's own signature (scheme A of
// shared/nuorder-api.md §2.3): fixed parameter order, nothing encoded, the
// query and body left out, lower-case hex HMAC-SHA1. rawURL is scheme, host
// and path; a query on it is ignored.
func SignatureNuOrder(method, rawURL string, oauth map[string]string, consumerSecret, tokenSecret string) string {
	if i := strings.IndexByte(rawURL, '?'); i >= 0 {
		rawURL = rawURL[:i]
	}
	var b strings.Builder
	b.WriteString(strings.ToUpper(method))
	b.WriteString(rawURL)
	b.WriteString("?oauth_consumer_key=" + oauth["oauth_consumer_key"])
	b.WriteString("&oauth_token=" + oauth["oauth_token"])
	b.WriteString("&oauth_timestamp=" + oauth["oauth_timestamp"])
	b.WriteString("&oauth_nonce=" + oauth["oauth_nonce"])
	b.WriteString("&oauth_version=1.0&oauth_signature_method=HMAC-SHA1")
	if cb, ok := oauth["oauth_callback"]; ok {
		b.WriteString("&oauth_callback=" + cb)
	}
	if v, ok := oauth["oauth_verifier"]; ok {
		b.WriteString("&oauth_verifier=" + v)
	}
	mac := hmac.New(sha1.New, []byte(consumerSecret+"&"+tokenSecret))
	mac.Write([]byte(b.String()))
	return hex.EncodeToString(mac.Sum(nil))
}

// rfc3986 percent-encodes as RFC 5849 §3.6 requires: everything but
// unreserved characters, with upper-case hex.
func rfc3986(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{c})))
		}
	}
	return b.String()
}

// SignatureRFC5849 computes the standard OAuth 1.0a HMAC-SHA1 signature
// (scheme B): base64 of HMAC-SHA1 over METHOD&url&params, where params are the
// query parameters and the oauth_* parameters (without oauth_signature and
// realm), encoded and sorted. rawURL may carry a query.
func SignatureRFC5849(method, rawURL string, oauth map[string]string, consumerSecret, tokenSecret string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	type kv struct{ k, v string }
	var params []kv
	for k, vs := range u.Query() {
		for _, v := range vs {
			params = append(params, kv{rfc3986(k), rfc3986(v)})
		}
	}
	for k, v := range oauth {
		if k == "oauth_signature" || k == "realm" {
			continue
		}
		params = append(params, kv{rfc3986(k), rfc3986(v)})
	}
	sort.Slice(params, func(i, j int) bool {
		if params[i].k != params[j].k {
			return params[i].k < params[j].k
		}
		return params[i].v < params[j].v
	})
	pairs := make([]string, len(params))
	for i, p := range params {
		pairs[i] = p.k + "=" + p.v
	}
	host := strings.ToLower(u.Host)
	if (u.Scheme == "http" && strings.HasSuffix(host, ":80")) || (u.Scheme == "https" && strings.HasSuffix(host, ":443")) {
		host = host[:strings.LastIndexByte(host, ':')]
	}
	base := strings.ToUpper(method) + "&" + rfc3986(strings.ToLower(u.Scheme)+"://"+host+u.EscapedPath()) + "&" + rfc3986(strings.Join(pairs, "&"))
	mac := hmac.New(sha1.New, []byte(rfc3986(consumerSecret)+"&"+rfc3986(tokenSecret)))
	mac.Write([]byte(base))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// Verify checks a request's OAuth parameters against creds, accepting either
// signature scheme. rawURL is the URL the client called (scheme, host, path
// and query). The error says what is wrong without echoing any secret.
func Verify(method, rawURL string, oauth map[string]string, creds Credentials) error {
	_, err := VerifyScheme(method, rawURL, oauth, creds, "")
	return err
}

// The signature schemes of shared/nuorder-api.md §2.3.
const (
	SchemeNuOrder = "nuorder" // A: NuOrder's own, hex, fixed order, nothing encoded
	SchemeRFC5849 = "rfc5849" // B: standard OAuth 1.0a
)

// VerifyScheme is Verify that also says which scheme the signature is
// in, and, with only set (SchemeNuOrder or SchemeRFC5849), refuses the
// other: a NuOrder that accepts one scheme only (§14: one client claims
// production now refuses standard RFC libraries).
func VerifyScheme(method, rawURL string, oauth map[string]string, creds Credentials, only string) (string, error) {
	scheme, err := verify(method, rawURL, oauth, creds)
	if err == nil && only != "" && scheme != only {
		return scheme, fmt.Errorf("signature scheme %s is not accepted here (only %s)", scheme, only)
	}
	return scheme, err
}

func verify(method, rawURL string, oauth map[string]string, creds Credentials) (string, error) {
	if oauth["oauth_signature_method"] != "" && !strings.EqualFold(oauth["oauth_signature_method"], "HMAC-SHA1") {
		return "", errors.New("unsupported oauth_signature_method")
	}
	if oauth["oauth_consumer_key"] != creds.ConsumerKey {
		return "", errors.New("unknown consumer key")
	}
	if oauth["oauth_token"] != creds.Token {
		return "", errors.New("invalid token")
	}
	sig := oauth["oauth_signature"]
	if sig == "" {
		return "", errors.New("missing oauth_signature")
	}
	if hmac.Equal([]byte(strings.ToLower(sig)), []byte(SignatureNuOrder(method, rawURL, oauth, creds.ConsumerSecret, creds.TokenSecret))) {
		return SchemeNuOrder, nil
	}
	want, err := SignatureRFC5849(method, rawURL, oauth, creds.ConsumerSecret, creds.TokenSecret)
	if err == nil && hmac.Equal([]byte(sig), []byte(want)) {
		return SchemeRFC5849, nil
	}
	return "", errors.New("invalid signature")
}
