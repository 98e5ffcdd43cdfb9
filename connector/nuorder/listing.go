package nuorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"golang.org/x/sync/errgroup"

	"pipehost/connector/nuorder/api"
)

// resolver says how to get the document a listing element stands for: the
// element itself when the listing carries documents, or a request to make.
// It returns errSkipElement for an element that stands for no readable
// document (a company listed without a code).
type resolver func(el json.RawMessage) (doc json.RawMessage, e api.Endpoint, params []string, err error)

// errSkipElement marks a listing element that is skipped, and counted.
var errSkipElement = errors.New("listing element skipped")

// eachListed streams a listing and calls fn with the document of every
// element, in listing order. Documents that must be fetched are fetched up to
// the client's in-flight limit at once, a window of batchRows elements at a
// time, so memory holds at most one window of documents. It returns how many
// elements the resolver skipped.
func (c *Connector) eachListed(ctx context.Context, e api.Endpoint, params []string, resolve resolver, fn func(json.RawMessage) error) (skipped int, err error) {
	var window []json.RawMessage
	flush := func() error {
		docs := make([]json.RawMessage, len(window))
		g, gctx := errgroup.WithContext(ctx)
		for i, el := range window {
			doc, fe, fparams, err := resolve(el)
			if errors.Is(err, errSkipElement) {
				skipped++
				continue
			}
			if err != nil {
				return err
			}
			if doc != nil {
				docs[i] = doc
				continue
			}
			g.Go(func() error {
				return c.client.getJSON(gctx, fe, fparams, &docs[i])
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		window = window[:0]
		for _, d := range docs {
			if d == nil {
				continue // skipped
			}
			if err := fn(d); err != nil {
				return err
			}
		}
		return nil
	}
	listed := 0
	err = c.client.streamArray(ctx, e, params, func(el json.RawMessage) error {
		listed++
		window = append(window, el)
		if len(window) >= batchRows {
			return flush()
		}
		return nil
	})
	if err != nil {
		return skipped, err
	}
	// The last window is resolved after the listing's answer: an element
	// of the wrong shape there is named with the endpoint here.
	if err := flush(); err != nil {
		if errors.As(err, new(*elementError)) && !strings.Contains(err.Error(), e.Path) {
			return skipped, fmt.Errorf("%s %s, one of its last %d elements: %w", e.Method, e.URL("", params...), min(listed, batchRows), err)
		}
		return skipped, err
	}
	return skipped, nil
}

// isObject says whether a JSON value is an object.
func isObject(raw json.RawMessage) bool {
	for _, b := range raw {
		switch b {
		case ' ', '\t', '\n', '\r':
			continue
		case '{':
			return true
		}
		return false
	}
	return false
}

// resolveProduct: a product listing holds _id strings or documents.
func resolveProduct(el json.RawMessage) (json.RawMessage, api.Endpoint, []string, error) {
	if isObject(el) {
		return el, api.Endpoint{}, nil, nil
	}
	var id string
	if err := json.Unmarshal(el, &id); err != nil || id == "" {
		return nil, api.Endpoint{}, nil, badElement(fmt.Errorf("product listing element %.80s is neither an _id nor a document", el))
	}
	return nil, api.ProductByID, []string{id}, nil
}

// resolveCompany: the company code listing holds codes, or objects with a
// code and/or an _id (then read by the confirmed _id route), or documents.
func resolveCompany(el json.RawMessage) (json.RawMessage, api.Endpoint, []string, error) {
	if isObject(el) {
		var ref map[string]json.RawMessage
		if err := json.Unmarshal(el, &ref); err != nil {
			return nil, api.Endpoint{}, nil, badElement(fmt.Errorf("company listing element: %w", err))
		}
		if _, hasName := ref["name"]; hasName {
			return el, api.Endpoint{}, nil, nil // a whole document
		}
		var id, code string
		json.Unmarshal(ref["_id"], &id)
		json.Unmarshal(ref["code"], &code)
		switch {
		case id != "":
			return nil, api.CompanyByID, []string{id}, nil
		case code != "":
			return nil, api.CompanyByCode, []string{code}, nil
		}
		return nil, api.Endpoint{}, nil, badElement(fmt.Errorf("company listing element %.80s has neither code nor _id", el))
	}
	var code string
	if err := json.Unmarshal(el, &code); err != nil {
		return nil, api.Endpoint{}, nil, badElement(fmt.Errorf("company listing element %.80s is not a code", el))
	}
	if code == "" {
		// A company without a code (S1 records some) cannot be read by code.
		return nil, api.Endpoint{}, nil, errSkipElement
	}
	return nil, api.CompanyByCode, []string{code}, nil
}

// readByID reads the documents of ids with e (one id each), batchRows at a
// time, the requests of a batch in flight together (the client bounds
// them), and calls fn with each, in order. An id NuOrder answers 404 for
// gets missing(id) instead (a stand-in document, or nil to skip it); with
// missing nil, a 404 is an error like any other.
func (c *Connector) readByID(ctx context.Context, e api.Endpoint, ids []string, missing func(id string) json.RawMessage, fn func(id string, doc json.RawMessage) error) error {
	for start := 0; start < len(ids); start += batchRows {
		part := ids[start:min(start+batchRows, len(ids))]
		docs := make([]json.RawMessage, len(part))
		g, gctx := errgroup.WithContext(ctx)
		for i, id := range part {
			g.Go(func() error {
				err := c.client.getJSON(gctx, e, []string{id}, &docs[i])
				var apiErr *APIError
				if missing != nil && errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound {
					docs[i] = missing(id)
					return nil
				}
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		for i, doc := range docs {
			if doc == nil {
				continue
			}
			if err := fn(part[i], doc); err != nil {
				return err
			}
		}
	}
	return nil
}
