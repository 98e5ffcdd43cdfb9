package fakeapi

import (
	"strings"
	"testing"
)

// FuzzParseAuthorization: any Authorization header is parsed or refused,
// never a panic, and what parses can be verified without one.
func FuzzParseAuthorization(f *testing.F) {
	for _, seed := range []string{
		`OAuth oauth_consumer_key="ck", oauth_token="tk", oauth_signature_method="HMAC-SHA1", oauth_signature="abc%3D", oauth_timestamp="1", oauth_nonce="n", oauth_version="1.0"`,
		`oauth oauth_consumer_key=ck,oauth_token=tk`, `OAuth`, `Bearer x`, `OAuth ,,,=,"`, "OAuth a=\"\\\"\"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, h string) {
		params, err := ParseAuthorization(h)
		if err != nil {
			return
		}
		Verify("GET", "http://127.0.0.1/api/products?"+strings.Repeat("a", len(h)%5), params, Credentials{ConsumerKey: "ck", ConsumerSecret: "cs", Token: "tk", TokenSecret: "ts"})
	})
}
