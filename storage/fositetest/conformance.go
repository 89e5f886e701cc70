package fositetest

import (
	"testing"
)

type testCase struct {
	name string
	run  func(t *testing.T, newStore NewStoreFunc)
}

// RunTests runs every conformance case as a named subtest
// (TestX/Group/Case), each on its own store from newStore.
func RunTests(t *testing.T, newStore NewStoreFunc) {
	groups := []struct {
		name  string
		cases []testCase
	}{
		{"Client", clientCases},
		{"ClientAssertionJWT", jtiCases},
		{"AuthorizeCode", codeCases},
		{"AccessToken", accessCases},
		{"RefreshToken", refreshCases},
		{"OpenIDConnect", oidcCases},
		{"PKCE", pkceCases},
		{"Transaction", txCases},
		{"RefreshTx", reuseCases},
		{"RefreshTx/Rotation", protocolCases},
		{"RefreshTx/InlineAccess", inlineCases},
		{"Revoke", revokeCases},
		{"DeleteExpired", gcCases},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.cases {
				t.Run(tc.name, func(t *testing.T) { tc.run(t, newStore) })
			}
		})
	}
}
