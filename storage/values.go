package storage

import "strconv"

// Params renders cols query parameters numbered from $after+1, comma
// separated: "$3, $4, …". A non-empty types[i] casts parameter i
// ("$3::text"), for a place whose column types the context does not give
// (a SELECT list, a FROM item).
func Params(after, cols int, types ...string) string {
	return string(appendParams(nil, after, cols, types))
}

// Values renders a multi-row VALUES list of rows rows of cols parameters,
// numbered from $1 row after row: "($1, $2), ($3, $4)". types cast the
// first row's parameters as in Params (the others take their column's type
// from it). One multi-row VALUES costs Postgres a fraction of unnest over
// one array per column (a function scan each).
func Values(rows, cols int, types ...string) string {
	b := make([]byte, 0, rows*cols*6)
	for r := range rows {
		if r > 0 {
			b = append(b, ", "...)
		}
		b = append(b, '(')
		if r == 0 {
			b = appendParams(b, 0, cols, types)
		} else {
			b = appendParams(b, r*cols, cols, nil)
		}
		b = append(b, ')')
	}
	return string(b)
}

func appendParams(b []byte, after, cols int, types []string) []byte {
	for c := range cols {
		if c > 0 {
			b = append(b, ", "...)
		}
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(after+c+1), 10)
		if c < len(types) && types[c] != "" {
			b = append(b, "::"...)
			b = append(b, types[c]...)
		}
	}
	return b
}
