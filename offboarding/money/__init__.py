"""The case's money: step 8's payments, voids and order resolutions, the payment guard and
its overrides, the CAR console and the ledger import. The ledger itself (models, balances,
the statement) is the `payouts` app below; this package is where a case acts on it."""
