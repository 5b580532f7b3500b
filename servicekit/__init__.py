"""Code both services share: Litestar plugins and small modules, importing neither service."""
