"""Inventory's pure domain model: no I/O, no database, no Kafka, no asyncio.

Commands are method calls on aggregates (or the `pennylane_import` facade); each returns an
`Outcome`: stock movements, which `stock.post_movements` turns into ledger entries and levels,
and domain events (`events`) for the outbox. Entities are plain dataclasses with explicit ids.

Where each rule of shared/spec/PRODUCT.md lives:

- settings, defaults, required default location:
  `settings.TenantSettings`, `catalog.set_default_location`
- real / reserved / available / incoming per product × location: `stock.StockLevel`
- stock table, order created (mode off: R −= q; on: V += q): `orders.Order.target_effect`
- stock table, delivery note (off: recorded only; on: R −= d, V −= d), partial:
  `orders.Order.deliver`
- stock table, credit note → return, "restock on credit note": `returns.Return`
- stock table, purchase (incoming += q) and receipt (R += q, incoming −= q), partial:
  `purchases.Purchase`
- stock table, archive (release reservation) and cancel (reverse every effect):
  `orders.Order.archive`, `orders.Order.cancel`
- rule 1, an order keeps its mode and location: `orders.Order._refresh_status`
  (returns keep their restock flag the same way: `returns.Return._refresh_status`)
- rule 2, drafts move nothing and count once finalized: `documents.SourceDocument.counts`
- rule 3, edits by difference, deletions reversed, delivered never un-delivered (Conflict):
  `stock.settle`, `orders.Order.apply_document`, `orders.Order._check_against_deliveries`
- rule 4, service and product-less lines move nothing:
  `documents.DocumentLine.moves_stock`, `pennylane_import.resolve_lines`
- rule 5, negative stock allowed and reported: `stock.StockLevel.apply` (NegativeStock)
- rule 6, append-only ledger naming its cause, levels == ledger sum:
  `stock.LedgerEntry`, `stock.Cause`, `stock.post_movements`, `stock.reconcile`
- rule 7, any order and number of deliveries == the latest version once:
  `documents.supersedes` (version order, tie-break, tombstones)
- rule 8, invoice + purchase order of one quote are one sale:
  `orders.Order.ordered_quantities` (the max rule, argued in `orders`' docstring)
- rule 9, finalized invoices are corrected by credit notes: `returns.Return`
- rule 10, a credit note settles its invoice's order first (reservation released, the rest
  returned goods, restocked only with "restock on credit note"): `orders.Order.settlement`,
  `orders.Order.settle_credit`, `returns.Return.credit` (a return of a known order has no
  effect of its own: `returns.Return.settled_by_order`)
- rule 11, a return never puts back more than its order still has out (after a cancel:
  nothing; several credit notes share what the order took out, in arrival order):
  `orders.Order._out_of_stock`, `orders.Order.settlement`
- rule 12, goods or service decided once, when a document is first applied; the product's
  account is not part of a version's fingerprint; a service's leftover stock can be adjusted:
  `pennylane_import.resolve_lines`, `documents.SourceDocument.goods` / `.services`,
  `documents.DocumentVersion.fingerprint`, `adjustments.ManualAdjustment.by_delta`
- Pennylane's invoice `status: cancelled` and a purchase order's `archived_at` (the poller's
  `status`, "cancelled" / "archived") are kept on the stored document
  (`documents.SourceDocument.status`) and move no stock. A finalized invoice is cancelled in
  Pennylane *by* a credit note: that credit note settles the order (rule 10), so reversing the
  invoice as well (rule 3's "cancelled document") would count the same units twice. Archiving a
  purchase order files it away in Pennylane's lists (typically once it was invoiced); it is
  neither a deletion nor a cancellation, so the sale stands and its reservation stays until it
  is delivered, credited, or the order is archived or cancelled in Stockpit.
- products: name/SKU follow the last change without echo, import settings, a changed
  Pennylane id is a new product: `catalog.Product`, `catalog.import_pennylane_product`
- rule 13, last change wins on both sides: a Pennylane value replaces a field only when
  Pennylane changed it later than the field's last accepted change (`catalog._pennylane_wins`);
  change events carry what Stockpit last saw in Pennylane, with which outbound writes a field
  only when Stockpit's change is the later one (`outbound.domain.last_change`)
- a product named on a document is always created: `pennylane_import.resolve_lines`
- customers, name and e-mail both ways, created from documents, created in Pennylane for
  orders made in Stockpit: `catalog.Customer`, `orders.Order.create_in_stockpit`
- rule 15, likely duplicates flagged (SKU, else exact name) and merged (stock per location by
  ledger entries of cause "merge", Pennylane id moved, later postings on the duplicate go to
  the original): `duplicates.flag_duplicates`, `duplicates.merge`, `duplicates.redirect`
- rule 16, the sync interval's one home is `settings.TenantSettings.sync_interval` (the poller
  follows it through `inventory.settings.changed`)
- suppliers are never synchronised: `catalog.Supplier` (emits nothing)
- receipts sent to Pennylane on demand, never twice: `purchases.Purchase.request_send`,
  `mark_sent`, `mark_send_failed`
- manual adjustments and transfers: `adjustments.ManualAdjustment`, `adjustments.Transfer`
- refused commands (a 4xx with the reason): `errors.DomainError`
"""
