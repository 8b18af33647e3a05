package mec

// The MEC 011 data types cmbs sends and reads, with the field names of
// the OpenAPI files (MecAppSupportApi.yaml, MecServiceMgmtApi.yaml).

// appReadyConfirmation is the body of confirm_ready.
type appReadyConfirmation struct {
	Indication string `json:"indication"`
}

// appTerminationConfirmation is the body of confirm_termination.
type appTerminationConfirmation struct {
	OperationAction string `json:"operationAction"`
}

// Operation actions of a termination notice.
const (
	actionTerminating = "TERMINATING"
	actionStopping    = "STOPPING"
)

type linkType struct {
	Href string `json:"href,omitempty"`
}

type selfLink struct {
	Self linkType `json:"self"`
}

// appTerminationNotificationSubscription subscribes to the termination of
// the application instance. Links is required by the schema even in the
// request, where its href is not known yet and is left out.
type appTerminationNotificationSubscription struct {
	SubscriptionType  string   `json:"subscriptionType"`
	CallbackReference string   `json:"callbackReference"`
	Links             selfLink `json:"_links"`
	AppInstanceID     string   `json:"appInstanceId"`
}

const (
	subscriptionType = "AppTerminationNotificationSubscription"
	notificationType = "AppTerminationNotification"
)

// appTerminationNotification is what the platform posts to the callback.
type appTerminationNotification struct {
	NotificationType   string `json:"notificationType"`
	OperationAction    string `json:"operationAction"`
	MaxGracefulTimeout *int   `json:"maxGracefulTimeout"`
	Links              *struct {
		Subscription       linkType  `json:"subscription"`
		ConfirmTermination *linkType `json:"confirmTermination,omitempty"`
	} `json:"_links"`
}

// serviceInfo describes one MEC service: here one transport of cmbs.
type serviceInfo struct {
	SerInstanceID string        `json:"serInstanceId,omitempty"`
	SerName       string        `json:"serName"`
	Version       string        `json:"version"`
	State         string        `json:"state"`
	TransportInfo transportInfo `json:"transportInfo"`
	Serializer    string        `json:"serializer"`
}

type transportInfo struct {
	ID               string         `json:"id"`
	Name             string         `json:"name"`
	Description      string         `json:"description,omitempty"`
	Type             string         `json:"type"`
	Protocol         string         `json:"protocol"`
	Version          string         `json:"version"`
	Endpoint         endpointURIs   `json:"endpoint"`
	Security         struct{}       `json:"security"`
	ImplSpecificInfo map[string]any `json:"implSpecificInfo,omitempty"`
}

type endpointURIs struct {
	URIs []string `json:"uris"`
}

// problemDetails is RFC 7807's problem, as MEC 011 answers errors.
type problemDetails struct {
	Type     string `json:"type,omitempty"`
	Title    string `json:"title,omitempty"`
	Status   int    `json:"status,omitempty"`
	Detail   string `json:"detail,omitempty"`
	Instance string `json:"instance,omitempty"`
}
