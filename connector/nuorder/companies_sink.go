package nuorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"pipehost/connector"
	"pipehost/connector/nuorder/api"
)

// companyPayload builds the fields a row sets, in NuOrder's company shape.
// Only columns with a value are set: an empty cell leaves the field alone.
func companyPayload(r row) map[string]any {
	p := map[string]any{}
	for _, f := range []string{"code", "name", "currency_code", "payment_terms"} {
		if v := r.str(f); v != "" {
			p[f] = v
		}
	}
	if v, ok := r.flag("active"); ok {
		p["active"] = v
	}
	if v, ok := r.flag("archived"); ok && v {
		p["active"] = false // NuOrder knows no archive: an archived company is inactive
	}
	addr := map[string]any{}
	for col, field := range map[string]string{"address_line_1": "line_1", "address_line_2": "line_2", "city": "city",
		"state": "state", "zip": "zip", "country": "country"} {
		if v := r.str(col); v != "" {
			addr[field] = v
		}
	}
	if len(addr) > 0 {
		code := r.str("code")
		addr["display_name"] = r.str("name")
		addr["type"] = "both"
		addr["default_shipping"], addr["default_billing"] = true, true
		addr["shipping_code"], addr["billing_code"] = code, code
		p["addresses"] = []any{addr}
	}
	if email := r.str("rep_email"); email != "" {
		p["reps"] = []any{map[string]any{"name": r.str("rep_name"), "email": email}}
	}
	return p
}

// changedFields keeps the fields of p that differ from the company's doc.
// Addresses and reps compare on the fields the payload sets.
func changedFields(doc, p map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range p {
		cur, ok := doc[k]
		switch k {
		case "addresses", "reps":
			if ok && firstMatches(cur, v) {
				continue
			}
		default:
			if ok && jsonEqual(cur, v) {
				continue
			}
		}
		out[k] = v
	}
	return out
}

// firstMatches says whether the first element of cur has every field of the
// first element of want.
func firstMatches(cur, want any) bool {
	cl, _ := cur.([]any)
	wl, _ := want.([]any)
	if len(cl) == 0 || len(wl) == 0 {
		return false
	}
	cm, _ := cl[0].(map[string]any)
	wm, _ := wl[0].(map[string]any)
	for k, v := range wm {
		if !jsonEqual(cm[k], v) {
			return false
		}
	}
	return true
}

// writeCompanies creates, updates and archives companies by code. Each row
// reads the company first: it is created when the code is unknown, updated
// with the fields that differ, or left alone when nothing differs, so running
// the same input twice changes nothing the second time.
// companiesMethod is the companies sink stream's option.
var companiesMethod = connector.Option{Name: "method", Allowed: []string{"read", "force"}, Default: "read",
	Description: "read each company by code and send only what changed (read), or one upsert request per row (force)"}

func (c *Connector) writeCompanies(ctx context.Context, req connector.WriteRequest, in connector.RecordIterator, results connector.ResultFunc) (connector.WriteSummary, error) {
	var sum connector.WriteSummary
	if err := connector.CheckOptions("companies", []connector.Option{companiesMethod}, req.Options); err != nil {
		return sum, err
	}
	upsert := c.upsertCompany
	switch m := req.Options["method"]; m {
	case "", "read":
	case "force":
		upsert = c.forceCompany
	default:
		return sum, fmt.Errorf(`stream companies: option method = %q: use "read" (read each company by code, send only what changed) or "force" (one upsert request per row)`, m)
	}
	var rowNo int64
	for {
		rec, err := in.Next()
		if errors.Is(err, io.EOF) {
			return sum, nil
		}
		if err != nil {
			return sum, err
		}
		if err := checkSchema("companies", rec, CompaniesSinkSchema); err != nil {
			return sum, err
		}
		out := make([]connector.RowResult, 0, rec.NumRows())
		for i := 0; i < int(rec.NumRows()); i++ {
			res := connector.RowResult{Row: rowNo}
			rowNo++
			action, err := upsert(ctx, row{rec, i}, req.DryRun)
			var apiErr *APIError
			switch {
			case errors.As(err, &apiErr) && apiErr.RowLevel():
				res.Error = apiErr.Error()
			case errors.Is(err, errRowInvalid):
				res.Error = err.Error()
			case err != nil:
				return sum, err
			default:
				sum.Add(action, 1)
			}
			out = append(out, res)
		}
		if err := results(out); err != nil {
			return sum, err
		}
	}
}

var errRowInvalid = errors.New("invalid row")

type rowError struct{ msg string }

func (e rowError) Error() string   { return e.msg }
func (e rowError) Is(t error) bool { return t == errRowInvalid }

// forceCompany applies one row with NuOrder's create-or-update request (S4),
// without reading the company first: 201 means created, 200 updated (or
// archived, when the row sets the company inactive).
func (c *Connector) forceCompany(ctx context.Context, r row, dryRun bool) (string, error) {
	code := r.str("code")
	if code == "" {
		return "", rowError{"code is missing"}
	}
	p := companyPayload(r)
	if dryRun {
		return "companies to create or update (force)", nil
	}
	status, err := c.client.sendStatus(ctx, api.CompanyForce, nil, p, nil)
	switch {
	case err != nil:
		return "", err
	case status == http.StatusCreated:
		return "companies created", nil
	case p["active"] == false:
		return "companies archived", nil
	}
	return "companies updated", nil
}

// upsertCompany applies one row and says what it did.
func (c *Connector) upsertCompany(ctx context.Context, r row, dryRun bool) (string, error) {
	return c.readThenWriteCompany(ctx, r, dryRun, false)
}

// readThenWriteCompany reads the company by code, then creates it or sends
// the fields that changed. afterConflict is set on the one second attempt
// made when a create answered 409: if the read still finds nothing, the row
// is rejected rather than tried again.
func (c *Connector) readThenWriteCompany(ctx context.Context, r row, dryRun, afterConflict bool) (string, error) {
	code := r.str("code")
	if code == "" {
		return "", rowError{"code is missing"}
	}
	p := companyPayload(r)
	var doc map[string]any
	err := c.client.getJSON(ctx, api.CompanyByCode, []string{code}, &doc)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
		if afterConflict {
			return "", rowError{fmt.Sprintf("company %s: creating it answered 409 Conflict (it exists), yet reading it by code answers 404; "+
				`NuOrder may not serve GET /api/company/code/{code}: try option method = "force"`, code)}
		}
		if archived, _ := r.flag("archived"); archived {
			return "", rowError{fmt.Sprintf("cannot archive company %s: NuOrder has no company with this code", code)}
		}
		if p["name"] == nil || p["currency_code"] == nil {
			return "", rowError{fmt.Sprintf("company %s does not exist yet: name and currency_code are needed to create it", code)}
		}
		if dryRun {
			return "companies to create", nil
		}
		_, err := c.client.create(ctx, api.CompanyCreate, nil, p, func(ctx context.Context) (bool, error) {
			err := c.client.getJSON(ctx, api.CompanyByCode, []string{code}, &json.RawMessage{})
			var apiErr *APIError
			if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
				return false, nil
			}
			return err == nil, err
		})
		if errors.As(err, &apiErr) && apiErr.Status == http.StatusConflict {
			// Created meanwhile, or by an earlier attempt of this request
			// whose answer was lost: update it instead.
			return c.readThenWriteCompany(ctx, r, dryRun, true)
		}
		if err != nil {
			return "", err
		}
		return "companies created", nil
	}
	if err != nil {
		return "", err
	}
	id, _ := doc["_id"].(string)
	changed := changedFields(doc, p)
	if len(changed) == 0 {
		return "companies unchanged", nil
	}
	action := "companies updated"
	if v, ok := changed["active"]; ok && v == false {
		action = "companies archived"
	}
	if dryRun {
		return map[string]string{"companies updated": "companies to update", "companies archived": "companies to archive"}[action], nil
	}
	if err := c.client.send(ctx, api.CompanyUpdate, []string{id}, changed, nil); err != nil {
		return "", err
	}
	return action, nil
}
