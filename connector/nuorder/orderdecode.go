package nuorder

import (
	"bytes"
	"unicode/utf8"

	"pipehost/internal/jsonscan"
)

// Order documents are decoded by hand from their bytes (jsonscan), not by
// encoding/json's reflection: a listing of a million orders is gigabytes of
// JSON, and this is where the connector spends its time. The result is the
// one json.Unmarshal(raw, &order) gives, field for field, including
// encoding/json's rules (keys matched exactly, else case-insensitively; the
// last of duplicate keys wins, decoding into what the first left; null
// leaves a struct alone and clears a pointer or slice): FuzzDecodeOrder
// compares the two on any input.

// match returns the index in names of the field a key selects, as
// encoding/json selects it, or -1.
func match(key []byte, names []string) int {
	ascii := true
	for _, c := range key {
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	for i, n := range names {
		if string(key) == n {
			return i
		}
	}
	for i, n := range names {
		// An ASCII key folds only onto a name of its length: skip the
		// others cheaply (non-ASCII runes can fold across lengths).
		if ascii && len(n) != len(key) {
			continue
		}
		if bytes.EqualFold(key, []byte(n)) {
			return i
		}
	}
	return -1
}

// typeError is what encoding/json says when a value cannot go into a field.
func typeError(want string, v []byte) error {
	return &jsonscan.TypeError{Want: want, Got: jsonscan.Kind(v)}
}

// object decodes an object into a struct through set; null leaves the
// struct as it is.
func object(v []byte, names []string, set func(i int, val []byte) error) error {
	if jsonscan.IsNull(v) {
		return nil
	}
	if len(v) == 0 || v[0] != '{' {
		return typeError("object", v)
	}
	return jsonscan.Members(v, func(key, val []byte) error {
		if i := match(key, names); i >= 0 {
			return set(i, val)
		}
		return nil
	})
}

// slice decodes an array into *dst as encoding/json decodes into a slice:
// element i into the element already there (within the slice's capacity),
// null clears it, [] makes it empty but not nil.
func slice[T any](v []byte, dst *[]T, elem func(val []byte, e *T) error) error {
	if jsonscan.IsNull(v) {
		*dst = nil
		return nil
	}
	if len(v) == 0 || v[0] != '[' {
		return typeError("array", v)
	}
	n := 0
	err := jsonscan.Elements(v, func(val []byte) error {
		if n < cap(*dst) {
			*dst = (*dst)[:n+1]
		} else {
			var zero T
			*dst = append(*dst, zero)
		}
		n++
		return elem(val, &(*dst)[n-1])
	})
	if err != nil {
		return err
	}
	if n == 0 && *dst == nil {
		*dst = []T{}
	}
	*dst = (*dst)[:n]
	return nil
}

var orderFields = []string{"_id", "order_number", "status", "currency_code", "customer_po_number", "external_id", "order_type",
	"retailer", "rep_name", "rep_email", "billing_address", "shipping_address", "start_ship", "end_ship", "total",
	"total_quantity", "discount", "order_discounts", "payment_status", "edited", "edited_on", "notes", "line_items",
	"shipments", "created_on", "modified_on"}

// decodeOrder decodes an order document into o as json.Unmarshal does. It
// errors on invalid JSON.
func decodeOrder(raw []byte, o *order) error {
	v, err := jsonscan.Value(raw)
	if err != nil {
		return err
	}
	return decodeValidOrder(v, o)
}

// decodeValidOrder is decodeOrder for a document already validated (an
// element jsonscan.ArrayReader returned, or a document of getJSON),
// without surrounding whitespace: it is not scanned a second time.
func decodeValidOrder(v []byte, o *order) error {
	return object(v, orderFields, func(i int, val []byte) error {
		switch i {
		case 0:
			return o.ID.UnmarshalJSON(val)
		case 1:
			return o.OrderNumber.UnmarshalJSON(val)
		case 2:
			return o.Status.UnmarshalJSON(val)
		case 3:
			return o.CurrencyCode.UnmarshalJSON(val)
		case 4:
			return o.CustomerPONumber.UnmarshalJSON(val)
		case 5:
			return o.ExternalID.UnmarshalJSON(val)
		case 6:
			return o.OrderType.UnmarshalJSON(val)
		case 7:
			r := &o.Retailer
			return object(val, []string{"_id", "retailer_name", "retailer_code", "buyer_name", "buyer_email"}, func(i int, val []byte) error {
				return [...]*flexString{&r.ID, &r.Name, &r.Code, &r.BuyerName, &r.BuyerEmail}[i].UnmarshalJSON(val)
			})
		case 8:
			return o.RepName.UnmarshalJSON(val)
		case 9:
			return o.RepEmail.UnmarshalJSON(val)
		case 10:
			return decodeAddress(val, &o.BillingAddress)
		case 11:
			return decodeAddress(val, &o.ShippingAddress)
		case 12:
			return o.StartShip.UnmarshalJSON(val)
		case 13:
			return o.EndShip.UnmarshalJSON(val)
		case 14:
			return o.Total.UnmarshalJSON(val)
		case 15:
			return o.TotalQuantity.UnmarshalJSON(val)
		case 16:
			return o.Discount.UnmarshalJSON(val)
		case 17:
			d := &o.Discounts
			return object(val, []string{"original_total", "discounted_total"}, func(i int, val []byte) error {
				return [...]*flexNumber{&d.OriginalTotal, &d.DiscountedTotal}[i].UnmarshalJSON(val)
			})
		case 18:
			return o.PaymentStatus.UnmarshalJSON(val)
		case 19:
			return o.Edited.UnmarshalJSON(val)
		case 20:
			return o.EditedOn.UnmarshalJSON(val)
		case 21:
			return o.Notes.UnmarshalJSON(val)
		case 22:
			return decodeLineItems(val, &o.LineItems)
		case 23:
			return decodeShipments(val, &o.Shipments)
		case 24:
			return o.CreatedOn.UnmarshalJSON(val)
		case 25:
			return o.ModifiedOn.UnmarshalJSON(val)
		}
		return nil
	})
}

var addressFields = []string{"ref", "display_name", "line_1", "line_2", "city", "state", "zip", "country", "code",
	"shipping_code", "billing_code", "type", "default_shipping", "default_billing"}

func decodeAddress(v []byte, dst **address) error {
	if jsonscan.IsNull(v) {
		*dst = nil
		return nil
	}
	if len(v) == 0 || v[0] != '{' {
		return typeError("object", v)
	}
	if *dst == nil {
		*dst = &address{}
	}
	a := *dst
	return object(v, addressFields, func(i int, val []byte) error {
		switch i {
		case 12:
			return a.DefaultShipping.UnmarshalJSON(val)
		case 13:
			return a.DefaultBilling.UnmarshalJSON(val)
		}
		return [...]*flexString{&a.Ref, &a.DisplayName, &a.Line1, &a.Line2, &a.City, &a.State, &a.Zip, &a.Country,
			&a.Code, &a.ShippingCode, &a.BillingCode, &a.Type}[i].UnmarshalJSON(val)
	})
}

// decodeLineItems decodes line_items as lineItems.UnmarshalJSON does: a
// new slice every time (empty for null), each item keeping its own text.
func decodeLineItems(v []byte, dst *lineItems) error {
	if jsonscan.IsNull(v) {
		*dst = lineItems{}
		return nil
	}
	if len(v) == 0 || v[0] != '[' {
		return typeError("array", v)
	}
	items := make(lineItems, 0, 4)
	err := jsonscan.Elements(v, func(val []byte) error {
		items = append(items, lineItem{})
		li := &items[len(items)-1]
		if err := decodeLineItem(val, li); err != nil {
			return err
		}
		li.raw = val
		return nil
	})
	if err != nil {
		return err
	}
	*dst = items
	return nil
}

var lineItemFields = []string{"id", "product", "warehouse", "prebook", "ship_start", "ship_end", "sizes"}

func decodeLineItem(v []byte, li *lineItem) error {
	return object(v, lineItemFields, func(i int, val []byte) error {
		switch i {
		case 0:
			return li.ID.UnmarshalJSON(val)
		case 1:
			p := &li.Product
			return object(val, []string{"_id", "style_number", "color", "color_code", "brand_id", "season"}, func(i int, val []byte) error {
				return [...]*flexString{&p.ID, &p.StyleNumber, &p.Color, &p.ColorCode, &p.BrandID, &p.Season}[i].UnmarshalJSON(val)
			})
		case 2:
			return li.Warehouse.UnmarshalJSON(val)
		case 3:
			return li.Prebook.UnmarshalJSON(val)
		case 4:
			return li.ShipStart.UnmarshalJSON(val)
		case 5:
			return li.ShipEnd.UnmarshalJSON(val)
		case 6:
			return slice(val, &li.Sizes, decodeOrderSize)
		}
		return nil
	})
}

func decodeOrderSize(v []byte, s *orderSize) error {
	return object(v, []string{"size", "upc", "quantity", "price", "original_price"}, func(i int, val []byte) error {
		switch i {
		case 0:
			return s.Size.UnmarshalJSON(val)
		case 1:
			return s.UPC.UnmarshalJSON(val)
		}
		return [...]*flexNumber{&s.Quantity, &s.Price, &s.OriginalPrice}[i-2].UnmarshalJSON(val)
	})
}

// decodeShipments decodes shipments as shipmentList.UnmarshalJSON does: a
// new slice every time (nil for null), each shipment keeping its own text.
func decodeShipments(v []byte, dst *shipmentList) error {
	if jsonscan.IsNull(v) {
		*dst = nil
		return nil
	}
	if len(v) == 0 || v[0] != '[' {
		return typeError("array", v)
	}
	items := shipmentList{}
	err := jsonscan.Elements(v, func(val []byte) error {
		items = append(items, shipment{})
		s := &items[len(items)-1]
		if err := decodeShipment(val, s); err != nil {
			return err
		}
		s.raw = val
		return nil
	})
	if err != nil {
		return err
	}
	*dst = items
	return nil
}

func decodeShipment(v []byte, s *shipment) error {
	return object(v, []string{"type", "status", "shipment_date", "tracking_numbers", "carrier"}, func(i int, val []byte) error {
		switch i {
		case 0:
			return s.Type.UnmarshalJSON(val)
		case 1:
			return s.Status.UnmarshalJSON(val)
		case 2:
			return s.ShipmentDate.UnmarshalJSON(val)
		case 4:
			return s.Carrier.UnmarshalJSON(val)
		}
		return slice(val, &s.TrackingNumbers, func(val []byte, f *flexString) error { return f.UnmarshalJSON(val) })
	})
}
