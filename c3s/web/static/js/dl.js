// Definition lists (<dl>) of figures: one label and one value a row.

/** Fill `list` with `[label, value]` rows; each <dd> carries `data-<key>="label"`, so a test or a
 * style can find one figure by its label. */
export function fillDefinitions(list, rows, key) {
  list.replaceChildren(...rows.flatMap(([label, value]) => {
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    dd.textContent = value;
    dd.dataset[key] = label;
    return [dt, dd];
  }));
}
