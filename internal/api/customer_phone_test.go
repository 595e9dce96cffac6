package api_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/posbridge/posbridge/internal/api"
	"github.com/posbridge/posbridge/internal/pos"
)

// documentedPhone is the Customer.phone pattern of docs/openapi.yaml.
var documentedPhone = regexp.MustCompile(`^\+?[0-9]{1,19}$`)

// TestCustomerPhoneIsDocumentedPattern: a checkout's customer.phone is
// taken exactly when it matches the documented pattern (an optional '+'
// and 1 to 19 digits). A lone "+" and 20 digits without '+' were
// accepted.
func TestCustomerPhoneIsDocumentedPattern(t *testing.T) {
	for _, phone := range []string{
		"+", "++1", "+965 1234", "12-34", "١٢٣", "+12345678901234567890", "12345678901234567890",
		"1", "+1", "96512345678", "+96512345678", "1234567890123456789", "+1234567890123456789",
	} {
		body := `{"terminal_id":"29708454","amount":"1.000","customer":{"phone":"` + phone + `"}}`
		req, err := api.DecodeCreate([]byte(body), "k-1")
		if documentedPhone.MatchString(phone) {
			if err != nil || req.Customer.Phone != phone {
				t.Errorf("phone %q (documented form): %v", phone, err)
			}
			continue
		}
		var e *pos.Error
		if !errors.As(err, &e) || e.Code != pos.EInvalid || e.Field != "customer.phone" || !strings.Contains(e.Message, "1 to 19 digits") {
			t.Errorf("phone %q: %v; want invalid customer.phone saying 1 to 19 digits", phone, err)
		}
	}
}
