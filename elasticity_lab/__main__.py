from elasticity_lab.cli import main

raise SystemExit(main())
