package payout

import (
	"bytes"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DefaultSensitiveFields are the answer fields sealed with the merchant's
// key when the answer does not list them in sensitiveFields.
var DefaultSensitiveFields = []string{"identity", "identitypic", "signpic", "stcaccount", "cardno"}

// envelope is the provider's answer: {"code","message","data",
// "sensitiveFields","requestId"}. field is not in the reference: an
// error answer naming its field is read when present.
type envelope struct {
	Code            flexInt         `json:"code"`
	Message         string          `json:"message"`
	Data            json.RawMessage `json:"data"`
	SensitiveFields []string        `json:"sensitiveFields"`
	RequestID       string          `json:"requestId"`
	Field           string          `json:"field"`
}

func (e envelope) code() int { return int(e.Code) }

// flexInt is a JSON number or a string of digits (providers are not
// consistent); null and "" are 0.
type flexInt int64

func (f *flexInt) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		*f = 0
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		b = []byte(strings.TrimSpace(s))
		if len(b) == 0 {
			*f = 0
			return nil
		}
	}
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		// A number with a fraction or exponent ("4.0", 1.686809574e9).
		fl, ferr := strconv.ParseFloat(string(b), 64)
		if ferr != nil || fl != float64(int64(fl)) {
			return fmt.Errorf("not an integer: %.20q", b)
		}
		n = int64(fl)
	}
	*f = flexInt(n)
	return nil
}

// flexString is a JSON string or number, kept as text.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		*f = ""
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return errors.New("not a string or a number")
		}
		*f = flexString(n.String())
	}
	return nil
}

// Payee is the provider's answer to a create: the payee as the provider
// keeps it. Sealed holds the sensitive fields exactly as received (sealed
// with the merchant's public key), so a Payee can be stored and logged;
// open them with Client.OpenField or show them with Client.MaskPayee.
type Payee struct {
	CustomID           string `json:"customid"`
	MerchantCustomerID string `json:"mercustomid"`
	// Status is the mapped status; StatusCode and StatusDesc are what the
	// provider said.
	Status           PayeeStatus `json:"status"`
	StatusCode       int         `json:"status_code"`
	StatusDesc       string      `json:"statusdesc,omitempty"`
	DemandPerfection []string    `json:"demand_perfection,omitempty"`
	CreatedAt        time.Time   `json:"created_at,omitzero"`

	NameE        string `json:"name_e,omitempty"`
	NameA        string `json:"name_a,omitempty"`
	BankCode     string `json:"bankcode,omitempty"`
	IBANAccount  string `json:"ibanaccount,omitempty"`
	Address      string `json:"address,omitempty"`
	SwiftCode    string `json:"swiftcode,omitempty"`
	AutoApproval *int   `json:"autoapproval,omitempty"`
	OTPAppName   string `json:"otpappname,omitempty"`

	// Sealed maps a sensitive field's provider name (identity, cardno,
	// stcaccount, identitypic, signpic) to its sealed value.
	Sealed map[string]string `json:"sealed,omitempty"`
	// SensitiveFields is the answer's list of sealed fields.
	SensitiveFields []string `json:"sensitive_fields,omitempty"`
	RequestID       string   `json:"request_id,omitempty"`
}

// payeeData is the answer's data member.
type payeeData struct {
	CustomID         flexString `json:"customid"`
	MerCustomID      flexString `json:"mercustomid"`
	Status           flexInt    `json:"status"`
	StatusDesc       string     `json:"statusdesc"`
	DemandPerfection []string   `json:"demand_perfection"`
	CreatedAt        flexInt    `json:"created_at"`
	NameE            string     `json:"name_e"`
	NameA            string     `json:"name_a"`
	BankCode         flexString `json:"bankcode"`
	IBANAccount      string     `json:"ibanaccount"`
	Address          string     `json:"address"`
	SwiftCode        string     `json:"swiftcode"`
	AutoApproval     *flexInt   `json:"autoapproval"`
	OTPAppName       string     `json:"otpappname"`
}

// decodePayee reads the payee out of an answer's data.
func decodePayee(env envelope) (*Payee, error) {
	if len(bytes.TrimSpace(env.Data)) == 0 || string(bytes.TrimSpace(env.Data)) == "null" {
		return nil, errors.New("answer has no data")
	}
	var d payeeData
	if err := json.Unmarshal(env.Data, &d); err != nil {
		return nil, fmt.Errorf("decode payee: %w", err)
	}
	if d.CustomID == "" {
		return nil, errors.New("answer data has no customid")
	}
	p := &Payee{
		CustomID: string(d.CustomID), MerchantCustomerID: string(d.MerCustomID),
		Status: mapStatus(int(d.Status), d.StatusDesc), StatusCode: int(d.Status), StatusDesc: d.StatusDesc,
		DemandPerfection: d.DemandPerfection,
		NameE:            d.NameE, NameA: d.NameA, BankCode: string(d.BankCode), IBANAccount: d.IBANAccount,
		Address: d.Address, SwiftCode: d.SwiftCode, OTPAppName: d.OTPAppName,
		SensitiveFields: env.SensitiveFields, RequestID: env.RequestID,
	}
	if d.CreatedAt > 0 {
		p.CreatedAt = time.Unix(int64(d.CreatedAt), 0).UTC()
	}
	if d.AutoApproval != nil {
		a := int(*d.AutoApproval)
		p.AutoApproval = &a
	}
	fields := env.SensitiveFields
	if len(fields) == 0 {
		fields = DefaultSensitiveFields
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(env.Data, &raw); err != nil {
		return nil, fmt.Errorf("decode payee: %w", err)
	}
	for _, f := range fields {
		var v string
		if json.Unmarshal(raw[f], &v) == nil && v != "" {
			if p.Sealed == nil {
				p.Sealed = map[string]string{}
			}
			p.Sealed[f] = v
		}
	}
	return p, nil
}

// Mask shows only the last four characters of a secret, behind a fixed
// "****" that hides its length; a value of four characters or fewer is all
// stars. Empty stays empty.
func Mask(s string) string {
	r := []rune(s)
	switch {
	case len(r) == 0:
		return ""
	case len(r) <= 4:
		return "****"
	}
	return "****" + string(r[len(r)-4:])
}

// MaskedPayee is a payee as the till API shows it: sensitive values opened
// and masked to their last four characters.
type MaskedPayee struct {
	CustomID           string      `json:"custom_id"`
	MerchantCustomerID string      `json:"merchant_customer_id"`
	Status             PayeeStatus `json:"status"`
	StatusCode         int         `json:"status_code"`
	StatusDesc         string      `json:"status_description,omitempty"`
	DemandPerfection   []string    `json:"missing_documents,omitempty"`
	CreatedAt          time.Time   `json:"created_at,omitzero"`
	NameEn             string      `json:"name_en,omitempty"`
	NameAr             string      `json:"name_ar,omitempty"`
	BankCode           string      `json:"bank_code,omitempty"`
	Identity           string      `json:"identity,omitempty"`    // masked
	CardNo             string      `json:"card_number,omitempty"` // masked
	IBAN               string      `json:"iban,omitempty"`        // masked too: not sealed, but an account number
	STCAccount         string      `json:"stc_account,omitempty"` // masked
	HasIdentityPic     bool        `json:"has_identity_pic,omitempty"`
	HasSignPic         bool        `json:"has_sign_pic,omitempty"`
	RequestID          string      `json:"request_id,omitempty"`
}

// MaskPayee opens p's sealed fields with the merchant's private key and
// masks them for the till. A field that does not open is an error naming
// the field; no plaintext is kept beyond this call.
func (c *Client) MaskPayee(p *Payee) (MaskedPayee, error) {
	m := MaskedPayee{
		CustomID: p.CustomID, MerchantCustomerID: p.MerchantCustomerID, Status: p.Status,
		StatusCode: p.StatusCode, StatusDesc: p.StatusDesc, DemandPerfection: p.DemandPerfection,
		CreatedAt: p.CreatedAt, NameEn: p.NameE, NameAr: p.NameA, BankCode: p.BankCode,
		IBAN: Mask(p.IBANAccount), RequestID: p.RequestID,
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{{"identity", &m.Identity}, {"cardno", &m.CardNo}, {"stcaccount", &m.STCAccount}} {
		sealed, ok := p.Sealed[f.name]
		if !ok {
			continue
		}
		plain, err := c.OpenField(sealed)
		if err != nil {
			return MaskedPayee{}, fmt.Errorf("payout: payee %s field %s: %w", p.CustomID, f.name, err)
		}
		*f.dst = Mask(plain)
	}
	_, m.HasIdentityPic = p.Sealed["identitypic"]
	_, m.HasSignPic = p.Sealed["signpic"]
	return m, nil
}

// hashKey derives PayeeHash's key from the merchant's private key: stable
// across restarts, secret, and never stored.
func hashKey(priv *rsa.PrivateKey) []byte {
	h := sha256.New()
	h.Write([]byte("posbridge payout payee hash v1\x00"))
	h.Write(priv.D.Bytes())
	return h.Sum(nil)
}

// PayeeHash fingerprints a payee request for the outbox's idempotency
// check (same key, same request?). Sealing is randomized, so the hash is
// taken over the plaintext request; it is an HMAC keyed from the
// merchant's private key, so the stored hash does not let anyone test
// guesses of an identity or card number.
func (c *Client) PayeeHash(r PayeeRequest) string {
	mac := hmac.New(sha256.New, c.hmac)
	auto := ""
	if r.AutoApproval != nil {
		auto = strconv.Itoa(*r.AutoApproval)
	}
	currency := r.Currency
	if currency == "" {
		currency = DefaultCurrency
	}
	for _, v := range []string{r.NameEn, r.NameAr, r.MerchantCustomerID, r.Identity, r.BankCode, r.CardNo,
		r.IBAN, r.STCAccount, r.Address, r.SwiftCode, auto, r.OTPAppName, currency} {
		// Length-prefixed, so no two requests share an encoding.
		fmt.Fprintf(mac, "%d:%s;", len(v), v)
	}
	return hex.EncodeToString(mac.Sum(nil))
}
