package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Table writes rows aligned in columns. Empty cells show as "-" so every
// column stays readable, and tabs or line breaks inside a cell (message
// content, reasons) become spaces so a cell never breaks the layout.
type Table struct {
	tw *tabwriter.Writer
}

// NewTable starts a table on w with the header row, if any.
func NewTable(w io.Writer, header ...string) *Table {
	t := &Table{tw: tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)}
	if len(header) > 0 {
		t.Row(header...)
	}
	return t
}

var cellCleaner = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ")

// Row adds one row.
func (t *Table) Row(cells ...string) {
	for i, c := range cells {
		c = cellCleaner.Replace(c)
		if c == "" {
			c = "-"
		}
		if i > 0 {
			fmt.Fprint(t.tw, "\t")
		}
		fmt.Fprint(t.tw, c)
	}
	fmt.Fprint(t.tw, "\n")
}

// Flush writes the aligned table out.
func (t *Table) Flush() error { return t.tw.Flush() }

// WriteJSON writes a JSON document indented as the server indents its
// own, so -o json output looks the same whether the client passes an
// answer on or assembles one.
func WriteJSON(w io.Writer, doc []byte) error {
	var buf bytes.Buffer
	if err := json.Indent(&buf, bytes.TrimSpace(doc), "", "    "); err != nil {
		return fmt.Errorf("the server's answer is not JSON: %w", err)
	}
	buf.WriteByte('\n')
	_, err := w.Write(buf.Bytes())
	return err
}

// WriteValue writes v as indented JSON.
func WriteValue(w io.Writer, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return WriteJSON(w, raw)
}
