// Package occi is cmbs's OCCI model and HTTP interface: categories (kinds,
// mixins, actions) registered on the query interface, entities (resources and
// links) created, read, updated, filtered and deleted at their kind's
// location, providers called around every store write, and the OCCI
// renderings: pyOCNI's JSON and OCCI 1.2 JSON (application/occi+json),
// text/plain, text/occi and text/uri-list, negotiated per request.
//
// # Routes
//
//	/-/ (also /.well-known/org/ogf/occi/-/)
//	    GET lists {"kinds","mixins","actions"}; with a body, filters them (per class, a
//	    list of alternative filter objects: term, scheme, title, location equal,
//	    actions/related included, attributes contained). POST registers categories;
//	    posting a registered one again merges new attributes and actions into it, but
//	    a built-in category (the server's own, see EnsureCategories) keeps its
//	    attribute definitions. PUT replaces the given members of registered
//	    categories and, with "providers", attaches providers to a kind. DELETE
//	    removes categories, refused with 409 while entities use them.
//	a kind's location, e.g. /compute/
//	    GET lists its entities ({"X-OCCI-Location":[…]}), filtered by a body. POST
//	    creates one or many (201, one Location header each). POST ?action=NAME runs
//	    an action on every entity there. DELETE deletes them all.
//	a mixin's location
//	    as a kind's for GET and actions; POST, PUT and DELETE with a location list
//	    associate, replace the set of, and dissociate entities.
//	an entity, e.g. /compute/ID
//	    GET renders it with its actions and, for a resource, the links from it. PUT
//	    creates or replaces it whole; POST updates part of it (attributes deep-merge,
//	    object-valued ones replaced whole; mixins added); POST ?action=NAME runs an
//	    action; DELETE deletes it and every link from or to it.
//	any other path
//	    GET lists what lies below it; with a filter, every matching entity below.
//	    DELETE deletes every entity below.
//
// Links are entities posted in {"links":[…]} with source and target
// (absolute URLs or paths of existing resources). Ids are kept when the
// client gives one (letters, digits, _.:~@-), otherwise a UUID is made.
// Entity locations in answers are absolute URLs, on Options.PublicURL when
// set, else the request's scheme and host; a category's location is always
// a path, in every rendering, since clients join it to their endpoint.
//
// # Renderings
//
// Content-Type names the request's rendering and Accept the answer's (with
// q-values); no Accept, or */*, means JSON. A request with no body and no
// Content-Type but OCCI headers is read as text/occi. text/plain carries
// Category, Link, X-OCCI-Attribute and X-OCCI-Location lines in the body,
// text/occi the same as headers, text/uri-list one URL a line. Malformed
// text is refused with 400 naming the line or header; text clients get
// errors as one plain line, JSON clients as problem documents.
//
// An application/occi+json answer uses the OCCI 1.2 shape when the Accept
// member that matched carries version=1.2; any other version keeps pyOCNI's
// shape. Without a version in Accept, the answer is OCCI 1.2 when the
// request asked for it (Content-Type …; version=1.2) or sent a document
// only OCCI 1.2 has (a single entity with kind at the top, {"action":…},
// {"locations":[…]}, categories with parent, depends, applies or dotted
// attribute names); everything else, every file in examples/ included, is
// answered in pyOCNI's shape. The two attribute shapes are the same
// attributes: cmbs.member.l1_socket ⇔ {"cmbs":{"member":{"l1_socket":…}}}.
//
// # Validation
//
// Required attributes, immutable attributes, unknown kinds and mixins and
// malformed documents are refused in both modes. By default (lenient) an
// attribute's declared type and pattern are advisory: a value breaking
// them is stored as sent and a warning is logged, naming the attribute. In
// strict mode (Options.Strict, cmbs serve --strict) they bind: a violation
// is a 400 naming the attribute, and unregistered providers, actions and
// related categories are refused too. Patterns match the whole value;
// types compare case-insensitively; a category's own default is never held
// against the client; an empty-string default on an Array or Object
// attribute stands for the empty array or object. Attributes no category
// declares are kept, as OCCI allows.
//
// # Providers and errors
//
// A Provider is a Go backend attached to kinds. The server calls the local
// providers of an entity's kind and mixins before each store write, so an
// error aborts the write; *Error values keep their status, other errors
// answer 502. A provider whose checks look at other entities of its kind
// implements Exclusive, and its Create or Update and the store write then
// run one request at a time for that kind.
//
// Every refusal is a problem document (WriteProblem, the one place statuses
// are mapped) and changes nothing: requests are validated whole before
// anything is written, and a request that writes several documents puts
// back what it wrote when a later write or provider fails. A store that
// cannot be reached answers 503 with Retry-After; any other fault of the
// server 500.
package occi
