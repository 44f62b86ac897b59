"""Price book: list prices in effect, models nobody has priced, and (Owners) new prices."""

from datetime import UTC, datetime

import streamlit as st

from analytics.price_store import add_price, current_book, price_history
from analytics.pricing import PriceBookError, price_table
from analytics.spend_estimates import unpriced_usage
from ui.session import data_changed, engine, principal

eng, who = engine(), principal()
today = datetime.now(UTC).date()
st.title("Price book")
st.caption("List prices per 1M tokens, used to *estimate* cost where the bill has no figure "
           "(by key or user, missing cost exports) and for what-if pricing. A price change "
           "never alters billed cost.")

book = current_book(eng)
day = st.columns([1, 3])[0].date_input("Prices in effect on", value=today)
table = price_table(book, day)
RATES = {"input_per_1m": "Input $/1M", "cached_input_per_1m": "Cached input $/1M",
         "cache_write_per_1m": "Cache write $/1M", "output_per_1m": "Output $/1M",
         "batch_discount": "Batch multiplier", "effective_from": "Since",
         "service_tier": "Tier", "provider": "Provider", "family": "Model family",
         "source": "Source"}
shown = ["provider", "family", "service_tier", "input_per_1m", "cached_input_per_1m",
         "cache_write_per_1m", "output_per_1m", "batch_discount", "effective_from", "source"]
st.dataframe(table.loc[table["status"] == "in effect", shown].rename(columns=RATES),
             hide_index=True, width="stretch")
scheduled = table[table["status"] == "scheduled"]
if not scheduled.empty:
    st.subheader("Scheduled changes")
    st.caption("Prices with a later effective date change nothing before that date.")
    st.dataframe(scheduled[shown].rename(columns=RATES), hide_index=True, width="stretch")

st.subheader("Models without a price")
missing = unpriced_usage(eng, who)  # the current book, resolved again by a background refresh
if missing.empty:
    st.success("Every model in the imported usage has a price.")
else:
    st.warning(f"{len(missing)} model(s) in the imported usage have no price, so their cost "
               "is not estimated (never counted as zero)."
               + (" Add their prices below." if who.is_owner else " Ask an Owner to add them."))
    st.dataframe(missing, hide_index=True, width="stretch")

if who.is_owner:
    st.subheader("Add or change a price")
    families = sorted(set(table["family"]) | set(missing["family"]))
    with st.form("add_price", clear_on_submit=True):
        c1, c2, c3, c4 = st.columns(4)
        provider = c1.selectbox("Provider", ["openai", "anthropic"], accept_new_options=True)
        family = c2.selectbox("Model family", families, index=None, accept_new_options=True,
                              placeholder="e.g. gpt-5-mini")
        tier = c3.text_input("Service tier", value="default")
        effective = c4.date_input("Effective from", value=today)
        c1, c2, c3, c4 = st.columns(4)
        input_rate = c1.text_input("Input $ per 1M")
        cached_rate = c2.text_input("Cached input $ per 1M", help="Empty: the input price.")
        write_rate = c3.text_input("Cache write $ per 1M", help="Anthropic only.")
        output_rate = c4.text_input("Output $ per 1M")
        c1, c2 = st.columns([1, 3])
        discount = c1.text_input("Batch multiplier", value="0.5")
        source = c2.text_input("Source", placeholder="where this price comes from")
        if st.form_submit_button("Add price", type="primary"):
            try:
                price = add_price(eng, who, {
                    "provider": provider or "", "family": family or "", "service_tier": tier,
                    "effective_from": effective, "input_per_1m": input_rate,
                    "cached_input_per_1m": cached_rate, "cache_write_per_1m": write_rate,
                    "output_per_1m": output_rate, "batch_discount": discount,
                    "source": source})
            except PriceBookError as exc:
                st.error(str(exc))
            else:
                data_changed()
                st.success(f"Added {price.family} ({price.service_tier}) from "
                           f"{price.effective_from:%d %b %Y}.")

st.subheader("Prices added in the app")
history = price_history(eng)
if history.empty:
    st.caption("None yet: the book is the shipped price file.")
else:
    st.caption("Kept for good: a change is a new row; for the same model, tier and date the "
               "newest row applies.")
    st.dataframe(history.rename(columns=RATES), hide_index=True, width="stretch")
