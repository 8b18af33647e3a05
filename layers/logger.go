package layers

import (
	"io"

	"github.com/sirupsen/logrus"
)

// orDiscard returns l, or a logger that drops everything when l is nil, so
// the package never writes to logrus' global logger behind the caller's back.
func orDiscard(l logrus.FieldLogger) logrus.FieldLogger {
	if l != nil {
		return l
	}
	d := logrus.New()
	d.SetOutput(io.Discard)
	return d
}
