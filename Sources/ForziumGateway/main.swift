import ForziumGatewayCore

await GatewayCommand.main()
