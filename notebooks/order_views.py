# %% [markdown]
# > **Stored outputs below show a scratch book: Run All (Run ▸ Run All Cells) to work on the shared book.**
#
# # Order views
#
# The book as tables and pictures: the blotter, one order's history, summaries by status
# and by symbol, a chart, the lifecycle diagram, and a check that what the API returns is
# what DuckDB holds and what the event log replays to. Tables print prices exactly as the
# book holds them, missing values blank and times in UTC (`show(frame)`); the frames
# themselves keep exact decimals for pandas work.
#
# Inside the workbench this notebook reads the shared book (the one the order-entry
# notebook writes to; re-run the cells to see new orders). Anywhere else it shows a scratch
# demo book — six orders on the simulated clock — which is what the stored outputs show.

# %%
from oms import views
from oms.notebook import (
    backend_check,
    lifecycle_mermaid,
    lifecycle_table,
    order_history,
    session,
    sql,
    status_chart,
)
from oms.widgets import show

book = session(demo=True)
gw = book.gateway
print(book)

# %% [markdown]
# ## Blotter

# %%
blotter = views.blotter(gw)  # a pandas DataFrame: exact decimals, UTC timestamps
show(blotter)

# %% [markdown]
# ## One order's history
#
# Every command on the order, oldest first, with what it changed (order 5 was modified,
# then executed at its new limit). On a book without that order the line above the table
# says so.

# %%
order_history(gw, 5)

# %% [markdown]
# ## Summaries

# %%
show(views.summary(gw, "status"))

# %%
show(views.summary(gw, "symbol"))

# %%
status_chart(gw)

# %% [markdown]
# ## The lifecycle
#
# Generated from `oms.lifecycle.TRANSITIONS`, the one table the engine applies. Modify and
# cancel are allowed only while NEW; CANCELLED and EXECUTED are terminal.

# %%
lifecycle_mermaid()

# %%
lifecycle_table()

# %% [markdown]
# ## Backend verification
#
# SQL straight against the DuckDB tables, then three independent reads of the book
# compared: the gateway's orders, the `orders` rows in DuckDB, and the orders rebuilt by
# replaying the accepted events of `order_events`.

# %%
show(sql(gw, "SELECT status, count(*) AS orders, sum(quantity) AS quantity FROM orders GROUP BY status ORDER BY status"))

# %%
show(sql(gw, "SELECT seq, order_id, action, from_status, to_status, accepted FROM order_events ORDER BY seq"))

# %%
check = backend_check(gw)
assert check["matches_gateway"].all(), check
show(check)
