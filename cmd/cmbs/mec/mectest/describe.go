package mectest

import (
	"strings"

	liberrors "github.com/pb33f/libopenapi-validator/errors"
)

// describe puts validation errors on a line each, with the schema
// failures under them.
func describe(errs []*liberrors.ValidationError) string {
	var sb strings.Builder
	for _, e := range errs {
		sb.WriteString("\n  " + e.Message)
		if e.Reason != "" {
			sb.WriteString(": " + e.Reason)
		}
		for _, f := range e.SchemaValidationErrors {
			sb.WriteString("\n    " + f.FieldPath + ": " + f.Reason)
		}
	}
	return sb.String()
}
