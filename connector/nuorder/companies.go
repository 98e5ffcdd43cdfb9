package nuorder

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"

	"pipehost/connector"
	"pipehost/connector/nuorder/api"
)

// address is a postal address in a company or an order.
type address struct {
	Ref             flexString `json:"ref"`
	DisplayName     flexString `json:"display_name"`
	Line1           flexString `json:"line_1"`
	Line2           flexString `json:"line_2"`
	City            flexString `json:"city"`
	State           flexString `json:"state"`
	Zip             flexString `json:"zip"`
	Country         flexString `json:"country"`
	Code            flexString `json:"code"`
	ShippingCode    flexString `json:"shipping_code"`
	BillingCode     flexString `json:"billing_code"`
	Type            flexString `json:"type"`
	DefaultShipping flexBool   `json:"default_shipping"`
	DefaultBilling  flexBool   `json:"default_billing"`
}

// appendAddress writes an address struct; nil is a null.
func appendAddress(b array.Builder, a *address) {
	sb := b.(*array.StructBuilder)
	if a == nil {
		sb.AppendNull()
		return
	}
	sb.Append(true)
	for _, c := range [...]named{{"ref", a.Ref}, {"display_name", a.DisplayName}, {"line_1", a.Line1}, {"line_2", a.Line2},
		{"city", a.City}, {"state", a.State}, {"zip", a.Zip}, {"country", a.Country}, {"code", a.Code}, {"shipping_code", a.ShippingCode},
		{"billing_code", a.BillingCode}, {"type", a.Type}} {
		appendString(member(sb, addressType, c.name), c.v)
	}
	appendBool(member(sb, addressType, "default_shipping"), a.DefaultShipping)
	appendBool(member(sb, addressType, "default_billing"), a.DefaultBilling)
}

func appendAddresses(b array.Builder, as []address) {
	lb := b.(*array.ListBuilder)
	if as == nil {
		lb.AppendNull()
		return
	}
	lb.Append(true)
	for i := range as {
		appendAddress(lb.ValueBuilder(), &as[i]) // appends the struct itself
	}
}

// person is a rep or a buyer.
type person struct {
	Name        flexString `json:"name"`
	Email       flexString `json:"email"`
	Title       flexString `json:"title"`
	PhoneOffice flexString `json:"phone_office"`
	PhoneCell   flexString `json:"phone_cell"`
}

func appendPeople(b array.Builder, ps []person) {
	appendStructs(b, ps, func(sb *array.StructBuilder, p person) {
		for _, c := range [...]named{{"name", p.Name}, {"email", p.Email}, {"title", p.Title},
			{"phone_office", p.PhoneOffice}, {"phone_cell", p.PhoneCell}} {
			appendString(member(sb, personType, c.name), c.v)
		}
	})
}

// company holds the fields of a company document the columns use.
type company struct {
	ID              flexString   `json:"_id"`
	Code            flexString   `json:"code"`
	Name            flexString   `json:"name"`
	CurrencyCode    flexString   `json:"currency_code"`
	Active          flexBool     `json:"active"`
	PaymentTerms    flexString   `json:"payment_terms"`
	CreditStatus    flexString   `json:"credit_status"`
	PricingTemplate flexString   `json:"pricing_template"`
	Warehouse       flexString   `json:"warehouse"`
	Discount        flexNumber   `json:"discount"`
	Surcharge       flexNumber   `json:"surcharge"`
	AllowBulk       flexBool     `json:"allow_bulk"`
	CustomerGroups  []flexString `json:"customer_groups"`
	Addresses       []address    `json:"addresses"`
	Reps            []person     `json:"reps"`
	Buyers          []person     `json:"buyers"`
	CreatedOn       flexString   `json:"created_on"`
	ModifiedOn      flexString   `json:"modified_on"`
}

func appendCompany(b *array.RecordBuilder, co *company, raw json.RawMessage, extracted time.Time) {
	col := func(name string) array.Builder { return column(b, name) }
	for _, c := range [...]named{{"_id", co.ID}, {"code", co.Code}, {"name", co.Name}, {"currency_code", co.CurrencyCode},
		{"payment_terms", co.PaymentTerms}, {"credit_status", co.CreditStatus}, {"pricing_template", co.PricingTemplate}, {"warehouse", co.Warehouse}} {
		appendString(col(c.name), c.v)
	}
	appendBool(col("active"), co.Active)
	appendAmount(col("discount"), co.Discount)
	appendAmount(col("surcharge"), co.Surcharge)
	appendBool(col("allow_bulk"), co.AllowBulk)
	appendStrings(col("customer_groups"), co.CustomerGroups)
	appendAddresses(col("addresses"), co.Addresses)
	appendPeople(col("reps"), co.Reps)
	appendPeople(col("buyers"), co.Buyers)
	appendTime(col("created_on"), co.CreatedOn)
	appendTime(col("modified_on"), co.ModifiedOn)
	col("document").(*array.StringBuilder).BinaryBuilder.Append(raw) // the bytes, without a string copy
	col("_extracted_at").(*array.TimestampBuilder).Append(arrow.Timestamp(extracted.UnixMicro()))
}

// readCompanies emits the companies created or modified in the read's
// window. NuOrder has no company change feed (shared/nuorder-api.md §12): the
// connector lists every company code, reads each company, and keeps those
// whose modified_on (or created_on) lies in the window. Each company is one
// row, however it changed.
func (c *Connector) readCompanies(ctx context.Context, cp []byte, options map[string]string, emit connector.EmitFunc) error {
	if err := connector.CheckOptions("companies", nil, options); err != nil {
		return err
	}
	w, err := openWindow(cp, time.Now(), c.lag())
	if err != nil {
		return err
	}
	extracted := time.Now().UTC()
	bt := newBatcher(CompaniesSchema, emit)
	defer bt.release()
	if w.startPart == 0 {
		var skipped int
		skipped, err = c.eachListed(ctx, api.CompanyCodes, nil, resolveCompany, func(doc json.RawMessage) error {
			var co company
			if err := json.Unmarshal(doc, &co); err != nil {
				return fmt.Errorf("company document: %w", err)
			}
			if !co.ID.ok {
				return fmt.Errorf("company document without _id: %.120s", doc)
			}
			if !w.contains(cursorOf(co.ModifiedOn, co.CreatedOn)) {
				return nil
			}
			appendCompany(bt.b, &co, doc, extracted)
			return bt.added()
		})
		if skipped > 0 {
			c.logger.Warn("companies listed without a code were skipped: NuOrder's code listing gives no other way to read them",
				"skipped", skipped)
		}
		if err != nil {
			return err
		}
	}
	return bt.flush(w.final())
}
