package hitpay

import (
	"bytes"
	"encoding/json"
	"time"
)

// Address is a customer's address.
type Address struct {
	City       string `json:"city,omitempty"`
	State      string `json:"state,omitempty"`
	Street     string `json:"street,omitempty"`
	PostalCode string `json:"postal_code,omitempty"`
	// Country is an ISO 3166-1 alpha-2 code, e.g. "SG".
	Country string `json:"country,omitempty"`
}

// CustomerRequest is the body of POST /v1/customers, in HitPay's field
// names. Validate checks it against the bridge's rules; the till API names
// two fields differently (mobile_number, country_code).
type CustomerRequest struct {
	Name                   string `json:"name"`
	Email                  string `json:"email,omitempty"`
	PhoneNumber            string `json:"phone_number,omitempty"`
	PhoneNumberCountryCode string `json:"phone_number_country_code,omitempty"`
	Remark                 string `json:"remark,omitempty"`
	// BirthDate is YYYY-MM-DD.
	BirthDate string `json:"birth_date,omitempty"`
	// Gender is "male", "female" or empty.
	Gender  string  `json:"gender,omitempty"`
	Address Address `json:"address,omitzero"`
}

// Customer is a customer HitPay created. Its JSON is HitPay's, so it can
// be handed to the till as it is.
type Customer struct {
	// ID is HitPay's UUID for the customer.
	ID                     string    `json:"id"`
	Name                   string    `json:"name"`
	Email                  string    `json:"email,omitempty"`
	PhoneNumber            string    `json:"phone_number,omitempty"`
	PhoneNumberCountryCode string    `json:"phone_number_country_code,omitempty"`
	Remark                 string    `json:"remark,omitempty"`
	BirthDate              string    `json:"birth_date,omitempty"`
	Gender                 string    `json:"gender,omitempty"`
	Address                Address   `json:"address,omitzero"`
	CreatedAt              time.Time `json:"created_at,omitzero"`
	UpdatedAt              time.Time `json:"updated_at,omitzero"`
}

// customerWire is HitPay's answer, read tolerantly: every field may be
// missing, null, or a number where a string was expected, and unknown
// fields are ignored. Only a missing id makes the answer unusable.
type customerWire struct {
	ID                     flexString      `json:"id"`
	Name                   flexString      `json:"name"`
	Email                  flexString      `json:"email"`
	PhoneNumber            flexString      `json:"phone_number"`
	PhoneNumberCountryCode flexString      `json:"phone_number_country_code"`
	Remark                 flexString      `json:"remark"`
	BirthDate              flexString      `json:"birth_date"`
	Gender                 flexString      `json:"gender"`
	Address                json.RawMessage `json:"address"`
	CreatedAt              flexString      `json:"created_at"`
	UpdatedAt              flexString      `json:"updated_at"`
	// Data is where a customer would be if HitPay wrapped it in an
	// envelope, as some of its list endpoints do.
	Data json.RawMessage `json:"data"`
}

type addressWire struct {
	City       flexString `json:"city"`
	State      flexString `json:"state"`
	Street     flexString `json:"street"`
	PostalCode flexString `json:"postal_code"`
	Country    flexString `json:"country"`
}

// decodeCustomer reads a create-customer answer. ok is false when it holds
// no customer id.
func decodeCustomer(raw []byte) (c Customer, ok bool) {
	var w customerWire
	if err := json.Unmarshal(raw, &w); err != nil {
		return Customer{}, false
	}
	if w.ID == "" && len(w.Data) > 0 && w.Data[0] == '{' {
		return decodeCustomer(w.Data)
	}
	if w.ID == "" {
		return Customer{}, false
	}
	c = Customer{
		ID: string(w.ID), Name: string(w.Name), Email: string(w.Email),
		PhoneNumber: string(w.PhoneNumber), PhoneNumberCountryCode: string(w.PhoneNumberCountryCode),
		Remark: string(w.Remark), BirthDate: string(w.BirthDate), Gender: string(w.Gender),
		CreatedAt: parseTime(string(w.CreatedAt)), UpdatedAt: parseTime(string(w.UpdatedAt)),
	}
	var a addressWire
	if json.Unmarshal(w.Address, &a) == nil {
		c.Address = Address{City: string(a.City), State: string(a.State), Street: string(a.Street),
			PostalCode: string(a.PostalCode), Country: string(a.Country)}
	}
	return c, true
}

// parseTime reads an RFC 3339 time with its offset; anything else is the
// zero time (the customer exists either way).
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// flexString decodes a JSON string, number or boolean as its text, and
// null, objects and arrays as "".
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || b[0] == 'n' || b[0] == '{' || b[0] == '[':
		*f = ""
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
	default:
		*f = flexString(b)
	}
	return nil
}
