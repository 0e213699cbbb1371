package intake

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cloudevents/sdk-go/v2/binding/format"
	"github.com/dispatcherhq/dispatcher"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// schemaJSON is the JSON Schema of the envelopes, published as
// docs/schemas/event.json (a test keeps the two identical).
//
//go:embed event.schema.json
var schemaJSON []byte

// schemaURL is the schema's $id.
const schemaURL = "https://github.com/dispatcherhq/dispatcher/blob/main/docs/schemas/event.json"

// The definitions an envelope is checked against.
const (
	defExtraHorizon    = "extrahorizon"
	defLK              = "lk"
	defCloudEvent      = "cloudevent"
	defCloudEventBatch = "cloudeventBatch"
)

// schemas compiles each definition once; the schema is embedded, so a
// failure is a bug that the tests catch.
var schemas = sync.OnceValue(func() map[string]*jsonschema.Schema { return compile(false) })

// formatSchemas are schemas with the formats (uri, uri-reference,
// date-time) asserted too: they name the attribute whose value the
// CloudEvents SDK refused, where its error only quotes the value. Only
// then: asserted on every event, they would refuse some the SDK takes.
var formatSchemas = sync.OnceValue(func() map[string]*jsonschema.Schema { return compile(true) })

func compile(formats bool) map[string]*jsonschema.Schema {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
	if err != nil {
		panic(fmt.Sprintf("intake: event.schema.json: %v", err))
	}
	c := jsonschema.NewCompiler()
	if formats {
		c.AssertFormat()
		c.AssertContent() // data_base64 that is not base64
	}
	if err := c.AddResource(schemaURL, doc); err != nil {
		panic(fmt.Sprintf("intake: event.schema.json: %v", err))
	}
	out := map[string]*jsonschema.Schema{}
	for _, def := range []string{defExtraHorizon, defLK, defCloudEvent, defCloudEventBatch} {
		s, err := c.Compile(schemaURL + "#/$defs/" + def)
		if err != nil {
			panic(fmt.Sprintf("intake: event.schema.json: %s: %v", def, err))
		}
		out[def] = s
	}
	return out
}

// envelopeSchema names the definition of a JSON envelope.
func envelopeSchema(envelope string) string {
	if envelope == dispatcher.EnvelopeLK {
		return defLK
	}
	return defExtraHorizon
}

// checkSchema validates body, JSON, against the definition def.
func checkSchema(def string, body []byte) error {
	return checkSchemaOf(schemas(), def, body)
}

func checkSchemaOf(set map[string]*jsonschema.Schema, def string, body []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return &Error{BodyFormat, "not valid JSON: " + err.Error()}
	}
	return validate(set, def, doc)
}

// checkCloudEventSchema validates the CloudEvents of msg: the body in
// structured and batch mode, the attributes of the Ce-* headers in binary
// mode.
func checkCloudEventSchema(set map[string]*jsonschema.Schema, msg Message, batch bool) error {
	if format.Lookup(msg.Header.Get("Content-Type")) != nil {
		def := defCloudEvent
		if batch {
			def = defCloudEventBatch
		}
		return checkSchemaOf(set, def, msg.Body)
	}
	attrs := map[string]any{}
	for k, vs := range msg.Header {
		if name, ok := strings.CutPrefix(k, "Ce-"); ok && len(vs) > 0 {
			attrs[strings.ToLower(name)] = vs[0]
		}
	}
	if ct := msg.Header.Get("Content-Type"); ct != "" {
		attrs["datacontenttype"] = ct
	}
	return validate(set, defCloudEvent, attrs)
}

func validate(set map[string]*jsonschema.Schema, def string, doc any) error {
	err := set[def].Validate(doc)
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	return fieldError(ve)
}

var printer = message.NewPrinter(language.English)

// fieldError turns the first failure of a validation into the domain's
// field error: "<field>: <what is wrong>", the field named by its path
// ("source.producerId", "[2].time").
func fieldError(ve *jsonschema.ValidationError) error {
	for len(ve.Causes) > 0 {
		if k, ok := ve.ErrorKind.(*kind.PropertyNames); ok { // its cause says only "does not match pattern"
			name := fieldPath(append(slices.Clone(ve.InstanceLocation), k.Property))
			return dispatcher.Errorf(dispatcher.EINVALID, "%s: is not a CloudEvents attribute name, which is letters a-z and digits 0-9", name)
		}
		ve = ve.Causes[0]
	}
	path := fieldPath(ve.InstanceLocation)
	at := func(name string) string {
		if path == "" {
			return name
		}
		return path + "." + name
	}
	field := path
	if field == "" {
		field = "event"
	}
	switch k := ve.ErrorKind.(type) {
	case *kind.Required:
		return dispatcher.Errorf(dispatcher.EREQUIRED, "%s: is required", at(k.Missing[0]))
	case *kind.Type:
		return dispatcher.Errorf(dispatcher.EINVALID, "%s: must be %s, not %s", field, strings.Join(k.Want, " or "), k.Got)
	case *kind.MinLength:
		if k.Want == 1 {
			return dispatcher.Errorf(dispatcher.EREQUIRED, "%s: is required", field)
		}
		return dispatcher.Errorf(dispatcher.EINVALID, "%s: must be at least %d characters", field, k.Want)
	case *kind.MaxLength:
		return dispatcher.Errorf(dispatcher.EINVALID, "%s: must be at most %d characters", field, k.Want)
	case *kind.MinItems:
		return dispatcher.Errorf(dispatcher.EINVALID, "%s: must hold at least %d items", field, k.Want)
	case *kind.MaxItems:
		return dispatcher.Errorf(dispatcher.EINVALID, "%s: holds %d items; at most %d are allowed", field, k.Got, k.Want)
	case *kind.Format:
		want := map[string]string{"date-time": "an RFC 3339 time such as 2026-12-01T10:00:00Z",
			"uri": "an absolute URI such as https://example.com/source", "uri-reference": "a URI reference such as /sources/billing"}[k.Want]
		if want == "" {
			want = "a valid " + k.Want
		}
		got := fmt.Sprint(k.Got)
		if len(got) > 100 { // an attribute has no length limit: the body's
			got = strings.ToValidUTF8(got[:100], "") + "…"
		}
		return dispatcher.Errorf(dispatcher.EINVALID, "%s: must be %s, not %q", field, want, got)
	case *kind.Enum:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			want[i] = fmt.Sprintf("%q", fmt.Sprint(w))
		}
		return dispatcher.Errorf(dispatcher.EINVALID, "%s: must be %s", field, strings.Join(want, " or "))
	}
	return dispatcher.Errorf(dispatcher.EINVALID, "%s: %s", field, ve.ErrorKind.LocalizedString(printer))
}

// fieldPath writes a JSON pointer's tokens as a field path.
func fieldPath(tokens []string) string {
	var b strings.Builder
	for _, t := range tokens {
		if _, err := strconv.Atoi(t); err == nil {
			b.WriteString("[" + t + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(t)
	}
	return b.String()
}
