package ledger

import (
	"context"
	"testing"

	"github.com/poswitch/poswitch/ledger/currency"
)

func TestCurrencyTableMatchesTheDatabaseSeed(t *testing.T) {
	tl := newTestLedger(t, WriterConfig{})
	rows, err := tl.app.Query(context.Background(), `SELECT numeric_code, alpha_code, exponent FROM currency ORDER BY numeric_code`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	db := map[string]currency.Currency{}
	for rows.Next() {
		var c currency.Currency
		if err := rows.Scan(&c.Numeric, &c.Alpha, &c.Exponent); err != nil {
			t.Fatal(err)
		}
		db[c.Numeric] = c
	}
	all := currency.All()
	if len(db) != len(all) {
		t.Errorf("database has %d currencies, Go has %d", len(db), len(all))
	}
	for _, c := range all {
		if d, ok := db[c.Numeric]; !ok || d.Alpha != c.Alpha || d.Exponent != c.Exponent {
			t.Errorf("%s: Go %+v, database %+v", c.Numeric, c, d)
		}
	}
}
