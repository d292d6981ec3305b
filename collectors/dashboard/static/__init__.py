"""The dashboard page: HTML, CSS and vanilla JS, served as they are (a package only so wheels carry it)."""
