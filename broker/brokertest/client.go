package brokertest

import "github.com/houssem/cmbs/occi/occitest"

// MediaType is the OCCI JSON rendering every request is sent and asked in.
const MediaType = occitest.MediaType

// Client is occitest's: it sends requests to a cmbs server and fails its
// test when the server cannot be reached or answers what the test did not
// expect. The broker's helpers (Attrs, Message, Send, Has) are Server's.
type Client = occitest.Client

// Response is an answer as a test looks at it.
type Response = occitest.Response
