package fakeapi

import "testing"

// The two test vectors of shared/nuorder-api.md §2.3.
var vector = struct {
	creds            Credentials
	method, url      string
	timestamp, nonce string
}{
	creds:     Credentials{ConsumerKey: "ck_test", ConsumerSecret: "cs_test", Token: "tk_test", TokenSecret: "ts_test"},
	method:    "GET",
	url:       "https://wholesale.sandbox1.nuorder.com/api/orders/approved/list",
	timestamp: "1700000000",
	nonce:     "abcdef0123456789",
}

func vectorParams(sig string) map[string]string {
	return map[string]string{
		"oauth_consumer_key":     vector.creds.ConsumerKey,
		"oauth_token":            vector.creds.Token,
		"oauth_timestamp":        vector.timestamp,
		"oauth_nonce":            vector.nonce,
		"oauth_version":          "1.0",
		"oauth_signature_method": "HMAC-SHA1",
		"oauth_signature":        sig,
	}
}

func TestNuOrderSchemeVector(t *testing.T) {
	got := SignatureNuOrder(vector.method, vector.url, vectorParams(""), "cs_test", "ts_test")
	if got != "a7d953aa4ca0d71a33926e6f4c362bdb58782ad5" {
		t.Fatalf("scheme A signature = %s", got)
	}
	if err := Verify(vector.method, vector.url, vectorParams(got), vector.creds); err != nil {
		t.Fatal(err)
	}
}

func TestRFC5849SchemeVector(t *testing.T) {
	got, err := SignatureRFC5849(vector.method, vector.url, vectorParams(""), "cs_test", "ts_test")
	if err != nil {
		t.Fatal(err)
	}
	if got != "Up88P5h0z7P1lnuDjttT5r1iTEM=" {
		t.Fatalf("scheme B signature = %s", got)
	}
	if err := Verify(vector.method, vector.url, vectorParams(got), vector.creds); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyRejectsWrongSecret(t *testing.T) {
	sig := SignatureNuOrder(vector.method, vector.url, vectorParams(""), "wrong", "ts_test")
	if err := Verify(vector.method, vector.url, vectorParams(sig), vector.creds); err == nil {
		t.Fatal("a signature made with the wrong consumer secret was accepted")
	}
}

func TestParseAuthorizationIsLenient(t *testing.T) {
	for _, h := range []string{
		// NuOrder's recorded form: oAuth, unquoted, no spaces.
		`oAuth oauth_consumer_key=ck_test,oauth_timestamp=1700000000,oauth_nonce=abcdef0123456789,oauth_version=1.0,oauth_signature_method=HMAC-SHA1,oauth_token=tk_test,oauth_signature=Up88P5h0z7P1lnuDjttT5r1iTEM%3D`,
		// RFC form: quoted, percent-encoded, ", " separators, any order.
		`OAuth oauth_signature="Up88P5h0z7P1lnuDjttT5r1iTEM%3D", oauth_token="tk_test", oauth_consumer_key="ck_test", oauth_nonce="abcdef0123456789", oauth_timestamp="1700000000", oauth_signature_method="HMAC-SHA1", oauth_version="1.0"`,
	} {
		p, err := ParseAuthorization(h)
		if err != nil {
			t.Fatal(err)
		}
		if p["oauth_signature"] != "Up88P5h0z7P1lnuDjttT5r1iTEM=" || p["oauth_consumer_key"] != "ck_test" {
			t.Fatalf("parsed %v from %s", p, h)
		}
		if err := Verify(vector.method, vector.url, p, vector.creds); err != nil {
			t.Fatalf("%s: %v", h, err)
		}
	}
}
