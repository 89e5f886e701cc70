package loginui

// DeviceData is the /device page's data: the code typed (or carried in
// verification_uri_complete) and, once it names a pending request, what
// the device's app asks for.
type DeviceData struct {
	UserCode string
	Consent  *ConsentData
}
