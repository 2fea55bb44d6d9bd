"""What serves the app (``app.py``): the registry of models on offer, Explore, the fine-tune, the live lab, the
compute thread and the machine-sharing rules, uploads, and the figures they draw. Gradio-free and testable
without a browser, except ``gioada.app.ui``, the tabs' widgets; it builds on the library (``gioada``), which
never imports from here."""
