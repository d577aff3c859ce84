from jobql.cli import main

raise SystemExit(main())
