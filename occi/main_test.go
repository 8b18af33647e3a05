package occi_test

import (
	"os"
	"testing"

	"github.com/houssem/cmbs/store/couch/couchtest"
)

func TestMain(m *testing.M) { os.Exit(couchtest.Main(m)) }
