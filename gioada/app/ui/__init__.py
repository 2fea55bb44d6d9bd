"""The Gradio layer: one module per tab (its widgets and its own events), the widgets they share and the HTML
cards. The only part of gioada that imports Gradio; ``app.py`` builds the page from it and wires the tabs
together."""
