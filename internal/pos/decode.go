package pos

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"unicode/utf8"
)

// DecodeJSON decodes one JSON object from a till into v strictly: unknown
// fields, trailing data, invalid UTF-8 and wrong types are errors, each a
// *Error with code EInvalid naming the field ("body" for the whole).
func DecodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return FieldErrorf(EInvalid, "body", "is empty; send a JSON object")
	}
	if !utf8.Valid(body) {
		return FieldErrorf(EInvalid, "body", "is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonFieldError(body, v, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return FieldErrorf(EInvalid, "body", "has data after the JSON object")
	}
	return nil
}

// jsonFieldError turns a decoding error of body into v into a *Error
// naming the field by its full path, array indexes included.
func jsonFieldError(body []byte, v any, err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return FieldErrorf(EInvalid, "body", "must be a JSON object")
		}
		if p := jsonPathAt(body, te.Offset); p != "" {
			field = p
		}
		return FieldErrorf(EInvalid, field, "must be %s, not %s", jsonTypeName(te.Type), te.Value)
	case errors.As(err, &se):
		return FieldErrorf(EInvalid, "body", "is not valid JSON (at byte %d)", se.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return FieldErrorf(EInvalid, "body", "is truncated JSON")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		if p := unknownFieldPath(body, v, name); p != "" {
			return FieldErrorf(EInvalid, p, "is not a known field")
		}
		return FieldErrorf(EInvalid, quoteEmpty(name), "is not a known field")
	}
	var e *Error
	if errors.As(err, &e) {
		return e // a field type's own UnmarshalJSON said what is wrong
	}
	return FieldErrorf(EInvalid, "body", "could not be decoded: %v", err)
}

func jsonTypeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Bool:
		return "true or false"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "a list"
	}
	return fmt.Sprintf("of type %s", t)
}

// DecodeMoney reads a till's amount field: a JSON string with up to 3
// decimals ("1.250"). zeroOK allows "0.000"; negative amounts are refused.
// Errors are *Error naming field.
func DecodeMoney(field string, raw json.RawMessage, zeroOK bool) (Money, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, FieldErrorf(EInvalid, field, `is required, as a string with up to 3 decimals, e.g. "1.250"`)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return 0, FieldErrorf(EInvalid, field, `must be a string, e.g. "1.250", not %s`, jsonKind(raw))
	}
	m, err := ParseMoney(s)
	switch {
	case errors.Is(err, ErrMoneyPrecision):
		return 0, FieldErrorf(EInvalid, field, "has more than 3 decimals (KWD has 3): %q", s)
	case errors.Is(err, ErrMoneyRange):
		return 0, FieldErrorf(EInvalid, field, "is too large: %q (at most %s)", s, Money(maxMoneyDinars*FilsPerDinar))
	case err != nil:
		return 0, FieldErrorf(EInvalid, field, `must be a decimal like "1.250": %q`, s)
	case m < 0 && zeroOK:
		return 0, FieldErrorf(EInvalid, field, "must not be negative: %q", s)
	case m <= 0 && !zeroOK:
		return 0, FieldErrorf(EInvalid, field, "must be positive: %q", s)
	}
	return m, nil
}

func jsonKind(raw json.RawMessage) string {
	switch bytes.TrimSpace(raw)[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	}
	return "a number"
}
