"""The Textual chat TUI. Importing this package stays light: no LangChain, httpx or sandbox."""
