// ForziumEngineCore
