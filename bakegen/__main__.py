from bakegen.main import main

raise SystemExit(main())
