from servicegate.cli.main import app

app()
